"""Vocabulary trimming (compress.trim): tokenizers and models built here in seconds, one per tokenizer model type."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from edge_compress.compress.trim import TrimConfig, TrimError, trim
from edge_compress.compress.trim.hf_tokenizer import tokenizer_json
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

CORPUS = ["the movie was great and the actors were good", "a terrible film with a bad plot",
          "i loved this movie, the story was great", "the plot was bad but the music was good",
          "great acting, great music, a good film", "this film was not good at all"]
# Words the corpus never uses, made of characters it does use.
EVAL = ["the cinematography was breathtaking", "an unforgettable soundtrack", "mediocre dialogue, great film"]
TRAINING = CORPUS + EVAL + ["the soundtrack and the cinematography were breathtaking", "unforgettable mediocre dialogue",
                            "an actor, a plot, a story, music and acting"]
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def wordpiece() -> BertTokenizer:
    words = sorted({w.strip(",") for text in TRAINING for w in text.split()})
    # [CLS] / [SEP] / [MASK] last, so trimming renumbers them (and the post-processor's ids).
    vocab = ["[PAD]", "[UNK]", ",", *LETTERS, *(f"##{c}" for c in LETTERS), *words, "[CLS]", "[SEP]", "[MASK]"]
    return BertTokenizer(vocab={p: i for i, p in enumerate(dict.fromkeys(vocab))})


def byte_bpe() -> PreTrainedTokenizerFast:
    """GPT-2 / Llama 3 style: byte-level pre-tokenizer, the 256 byte symbols, merges trained on the texts."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    backend.train_from_iterator(TRAINING * 3, trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>"],
                                                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   pad_token="<|endoftext|>", model_input_names=["input_ids", "attention_mask"])


def roberta_bpe() -> PreTrainedTokenizerFast:
    """RoBERTa style: byte-level BPE whose post-processor (RobertaProcessing) holds the <s> / </s> ids itself."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    backend.decoder = decoders.ByteLevel()
    backend.train_from_iterator(TRAINING * 3, trainers.BpeTrainer(vocab_size=500, special_tokens=["<pad>", "<unk>"],
                                                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    backend.add_special_tokens(["<s>", "</s>"])  # past the trained vocabulary, so trimming renumbers them
    backend.post_processor = processors.RobertaProcessing(("</s>", backend.token_to_id("</s>")), ("<s>", backend.token_to_id("<s>")))
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>",
                                   cls_token="<s>", sep_token="</s>", model_input_names=["input_ids", "attention_mask"])


def unigram() -> PreTrainedTokenizerFast:
    """SentencePiece style: Metaspace pre-tokenizer, pieces with scores."""
    backend = Tokenizer(models.Unigram())
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    backend.train_from_iterator(TRAINING * 3, trainers.UnigramTrainer(vocab_size=150, special_tokens=["<pad>", "<unk>", "<s>", "</s>"],
                                                                      unk_token="<unk>"))
    backend.post_processor = processors.TemplateProcessing(single="<s> $A </s>", pair="<s> $A </s> $B </s>",
                                                           special_tokens=[("<s>", 2), ("</s>", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   model_input_names=["input_ids", "attention_mask"])


def unigram_byte_fallback() -> PreTrainedTokenizerFast:
    """Llama 2 / Gemma style SentencePiece: characters outside the vocabulary become <0xNN> byte pieces."""
    data = tokenizer_json(unigram())
    data["model"]["vocab"] += [[f"<0x{b:02X}>", -20.0] for b in range(256)]
    data["model"]["byte_fallback"] = True
    backend = Tokenizer.from_str(json.dumps(data))
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>",
                                   bos_token="<s>", eos_token="</s>", model_input_names=["input_ids", "attention_mask"])


TOKENIZERS = {"wordpiece": wordpiece, "byte-bpe": byte_bpe, "roberta-bpe": roberta_bpe, "unigram": unigram, "unigram-bytes": unigram_byte_fallback}


def classifier(tokenizer) -> BertForSequenceClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                        max_position_embeddings=64, num_labels=3, pad_token_id=tokenizer.pad_token_id)
    return BertForSequenceClassification(config).eval()


def gpt2_lm(tokenizer) -> GPT2LMHeadModel:
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=64,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return GPT2LMHeadModel(config).eval()


def llama_lm(tokenizer) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():  # a distinct head, so slicing it (not the embedding) is what the test checks
        model.lm_head.weight.normal_()
    return model


def tokens(tokenizer, text: str) -> list[str]:
    return tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])


@pytest.fixture(params=list(TOKENIZERS))
def trimmed(request):
    tokenizer = TOKENIZERS[request.param]()
    model = classifier(tokenizer)
    return tokenizer, trim(model, tokenizer, CORPUS, TrimConfig(keep_top_n=0))


def test_kept_pieces_tokenize_exactly_as_before(trimmed):
    tokenizer, result = trimmed
    assert result.vocab_after < result.vocab_before
    for text in CORPUS:
        assert tokens(result.tokenizer, text) == tokens(tokenizer, text)
        old_ids = tokenizer(text)["input_ids"]
        assert [result.kept_ids[i] for i in result.tokenizer(text)["input_ids"]] == old_ids
    assert result.corpus_fallback_rate == 0.0


def test_words_outside_the_corpus_fall_back_and_decode(trimmed):
    tokenizer, result = trimmed
    assert 0 < result.fallback_rate(EVAL) < 1
    for text in EVAL:
        ids = result.tokenizer(text)["input_ids"]
        assert result.tokenizer.unk_token_id not in ids  # every character is still a piece
        assert result.tokenizer.decode(ids, skip_special_tokens=True) == tokenizer.decode(tokenizer(text)["input_ids"],
                                                                                         skip_special_tokens=True)
    changed = [t for t in EVAL if tokens(result.tokenizer, t) != tokens(tokenizer, t)]
    assert changed, "the eval words were in the corpus after all"


def test_special_tokens_are_kept_and_renumbered(trimmed):
    tokenizer, result = trimmed
    new = result.tokenizer
    for name in ("pad_token", "unk_token", "cls_token", "sep_token", "bos_token", "eos_token"):
        token = getattr(tokenizer, name, None)
        if token is not None:
            assert getattr(new, name) == token
            assert new.convert_tokens_to_ids(token) == result.kept_ids.index(tokenizer.convert_tokens_to_ids(token))
    assert len(new) == result.vocab_after


def test_byte_pieces_are_kept_so_unseen_characters_still_fall_back_to_bytes():
    tokenizer = unigram_byte_fallback()
    result = trim(classifier(tokenizer), tokenizer, CORPUS, TrimConfig(keep_top_n=0))
    text = "a great film, très bien"  # "è" is in no training text: UTF-8 bytes <0xC3><0xA8>
    assert "<0xC3>" in tokens(tokenizer, text)
    assert tokens(result.tokenizer, text)[-8:] == tokens(tokenizer, text)[-8:]
    assert result.tokenizer.decode(result.tokenizer(text)["input_ids"], skip_special_tokens=True) == text


def test_top_n_keeps_the_most_frequent_pieces():
    tokenizer = byte_bpe()
    small = trim(classifier(tokenizer), tokenizer, CORPUS[:1], TrimConfig(keep_top_n=0))
    large = trim(classifier(tokenizer), tokenizer, CORPUS[:1], TrimConfig(keep_top_n=100))
    first_merges = tokenizer_json(tokenizer)["model"]["merges"][:100]
    vocab = tokenizer.get_vocab()
    assert set(small.kept_ids) < set(large.kept_ids)
    assert {vocab["".join(m)] for m in first_merges} <= set(large.kept_ids)


def test_bpe_keeps_only_merges_over_kept_pieces():
    tokenizer = byte_bpe()
    result = trim(classifier(tokenizer), tokenizer, CORPUS, TrimConfig(keep_top_n=0))
    model = tokenizer_json(result.tokenizer)["model"]
    assert len(model["merges"]) < len(tokenizer_json(tokenizer)["model"]["merges"])
    assert all(a in model["vocab"] and b in model["vocab"] and a + b in model["vocab"] for a, b in model["merges"])
    assert sorted(model["vocab"].values()) == list(range(len(model["vocab"])))


def test_sliced_embedding_rows_are_the_original_rows():
    tokenizer = wordpiece()
    model = classifier(tokenizer)
    before = model.get_input_embeddings().weight.detach().clone()
    result = trim(model, tokenizer, CORPUS)
    after = model.get_input_embeddings().weight
    assert after.shape == (result.vocab_after, before.shape[1]) and model.config.vocab_size == result.vocab_after
    assert torch.equal(after, before[result.kept_ids])
    assert model.config.pad_token_id == result.tokenizer.pad_token_id


@pytest.mark.parametrize("name", list(TOKENIZERS))
def test_trimmed_classifier_gives_identical_logits_on_the_corpus(name):
    tokenizer = TOKENIZERS[name]()
    model = classifier(tokenizer)
    with torch.no_grad():
        before = model(**tokenizer(CORPUS, padding=True, return_tensors="pt")).logits
    result = trim(model, tokenizer, CORPUS)
    with torch.no_grad():
        after = model(**result.tokenizer(CORPUS, padding=True, return_tensors="pt")).logits
    assert torch.equal(after, before)


@pytest.mark.parametrize("build", [gpt2_lm, llama_lm])
def test_lm_head_stays_tied_or_is_sliced_and_logits_over_kept_ids_match(build):
    tokenizer = byte_bpe()
    model = build(tokenizer)
    tied = model.config.tie_word_embeddings
    batch = tokenizer(CORPUS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model(**batch).logits
    result = trim(model, tokenizer, CORPUS)
    assert (model.get_output_embeddings().weight is model.get_input_embeddings().weight) == tied
    new_batch = result.tokenizer(CORPUS[:2], padding=True, return_tensors="pt")
    with torch.no_grad():
        after = model(**new_batch).logits
    assert after.shape[-1] == result.vocab_after
    torch.testing.assert_close(after, before[..., result.kept_ids], rtol=0, atol=1e-6)
    assert model.config.eos_token_id == result.tokenizer.eos_token_id


@pytest.mark.parametrize("build,auto", [(classifier, AutoModelForSequenceClassification), (gpt2_lm, AutoModelForCausalLM),
                                        (llama_lm, AutoModelForCausalLM)])
def test_trimmed_model_and_tokenizer_save_and_reload(build, auto, tmp_path):
    tokenizer = wordpiece() if build is classifier else byte_bpe()
    model = build(tokenizer)
    result = trim(model, tokenizer, CORPUS)
    model.save_pretrained(tmp_path)
    result.tokenizer.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["vocab_size"] == result.vocab_after
    loaded, loaded_tokenizer = auto.from_pretrained(tmp_path).eval(), AutoTokenizer.from_pretrained(tmp_path)
    assert len(loaded_tokenizer) == result.vocab_after
    for text in CORPUS + EVAL:
        assert loaded_tokenizer(text)["input_ids"] == result.tokenizer(text)["input_ids"]
    batch = loaded_tokenizer(CORPUS, padding=True, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(loaded(**batch).logits, model(**batch).logits)
    if build is not classifier:  # GPT-2's head stays tied after reload, Llama's (untied) stays apart
        tied = loaded.get_output_embeddings().weight is loaded.get_input_embeddings().weight
        assert tied == loaded.config.tie_word_embeddings == (build is gpt2_lm)


def test_refuses_what_it_cannot_trim_before_changing_anything():
    backend = Tokenizer(models.WordLevel({"[UNK]": 0, "good": 1, "film": 2}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[UNK]")
    model = classifier(tokenizer)
    before = model.get_input_embeddings().weight.detach().clone()
    with pytest.raises(TrimError, match="WordLevel"):
        trim(model, tokenizer, ["good film"])
    assert torch.equal(model.get_input_embeddings().weight, before)
    with pytest.raises(TrimError, match="keep_top_n"):
        TrimConfig(keep_top_n=-1)
    with pytest.raises(TrimError, match="no corpus"):
        trim(model, tokenizer, ["  "])



def _run_inputs(tmp_path):
    """A tiny BERT classifier checkpoint, train.csv = the corpus, eval.csv = corpus texts then texts with other words."""
    from conftest import LABELS, write_csv

    tokenizer = wordpiece()
    model = classifier(tokenizer)
    model.config.id2label, model.config.label2id = dict(enumerate(LABELS)), {l: i for i, l in enumerate(LABELS)}
    model.save_pretrained(tmp_path / "ckpt")
    tokenizer.save_pretrained(tmp_path / "ckpt")
    write_csv(tmp_path / "train.csv", [(t, LABELS[i % 3]) for i, t in enumerate(CORPUS)])
    write_csv(tmp_path / "eval.csv", [(t, LABELS[i % 3]) for i, t in enumerate(CORPUS + EVAL)])
    recipe = tmp_path / "r.yaml"
    recipe.write_text("validate: {latency_samples: 5, warmup: 0, batch_size: 4}\noptimize: {enabled: false}\n"
                      "quantize: {static: {enabled: false}}\ntrim: {keep_top_n: 0}\n")
    return tmp_path / "ckpt", tmp_path / "eval.csv", recipe


def test_trim_stage_adds_a_line_with_its_own_tokenizer_and_evaluation(tmp_path):
    from edge_compress.compress.recipe import load_recipe
    from edge_compress.compress.run.context import RunOptions, load_context
    from edge_compress.compress.run.stages import check_stages, torch_stages
    from edge_compress.compress.run.targets import TargetRun
    from edge_compress.compress.tasks import get_task

    ckpt, eval_csv, recipe_file = _run_inputs(tmp_path)
    recipe, task = load_recipe(str(recipe_file)), get_task("text-classification")
    ctx = load_context(RunOptions(str(ckpt), tmp_path / "out", str(eval_csv)), recipe, task,
                       TargetRun(recipe.targets, task.targets, task.name))
    check_stages(ctx)
    lines, sections = torch_stages(ctx)
    assert [line.prefix for line in lines] == ["", "trimmed-"]
    trimmed, section = lines[1], sections["trimming"]
    assert trimmed.ctx.ship_tokenizer is not trimmed.ctx.tokenizer and len(trimmed.ctx.ship_tokenizer) == section["vocab_after"]
    assert section["vocab_after"] < section["vocab_before"] and 0 < section["eval_fallback_rate"] < 1
    assert trimmed.settings["trimming"] == section
    before = ctx.evaluation.score(task.open_torch(ctx.ckpt.model), "untrimmed").outputs
    after = trimmed.ctx.evaluation.score(task.open_torch(trimmed.model), "trimmed").outputs
    np.testing.assert_allclose(after[:len(CORPUS)], before[:len(CORPUS)], rtol=0, atol=1e-6)  # corpus texts: same tokens


def test_trim_is_refused_for_causal_lm_recipes():
    from edge_compress.compress.errors import CompressError
    from edge_compress.compress.recipe import validate_recipe

    with pytest.raises(CompressError, match="trim"):
        validate_recipe({"task": "causal-lm", "trim": {"keep_top_n": 10}}, "r.yaml")
    assert validate_recipe({"trim": {"corpus": "calibration"}}, "r.yaml").trim.to_config() == TrimConfig()


def test_run_with_a_trim_recipe_adds_a_trimmed_line_that_ships_its_own_tokenizer(tmp_path):
    from edge_compress.compress.cli import app
    from typer.testing import CliRunner

    ckpt, eval_csv, recipe = _run_inputs(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(ckpt), "--out", str(out), "--eval-data", str(eval_csv), "--recipe", str(recipe),
                                      "--threads", "1"])
    if isinstance(result.exception, ModuleNotFoundError) and "optimum" in str(result.exception):
        pytest.skip("this branch's exporter still imports optimum (the transformers-5 export port replaces it)")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    names = [v["name"] for v in report["variants"]]
    assert names == ["onnx-fp32", "onnx-int8-dynamic", "trimmed-onnx-fp32", "trimmed-onnx-int8-dynamic"]
    assert all(v.get("error") is None for v in report["variants"]), report["variants"]
    trimming = report["trimming"]
    assert trimming["vocab_after"] < trimming["vocab_before"] and trimming["corpus_fallback_rate"] == 0
    trimmed = next(v for v in report["variants"] if v["name"] == "trimmed-onnx-fp32")
    assert trimmed["settings"]["trimming"]["vocab_after"] == trimming["vocab_after"]
    assert trimmed["params"] < report["variants"][0]["params"]
    assert "Trimmed line: 80 of 88 vocabulary entries" in (out / "report.md").read_text()
    folder = out / trimmed["path"]
    assert len(AutoTokenizer.from_pretrained(folder)) == trimming["vocab_after"]
    assert json.loads((folder / "config.json").read_text())["vocab_size"] == trimming["vocab_after"]
