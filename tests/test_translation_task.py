"""`--task translation` end to end on tiny seq2seq models the tests build and train for seconds.

A Marian (and a T5 / BART for the other families) with a byte-level BPE tokenizer built with the
`tokenizers` library on calib_data/translation, trained on its shortest pairs until greedy outputs depend
on the source (not one repeated token): export parity, greedy vs `model.generate`, beam search, the int8
variants, the report, the CLI and the bad inputs of issue 14.
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from edge_compress.compress.errors import CompressError

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "calib_data" / "translation"
TRAIN_SECONDS = 12.0


def read_pairs(name: str) -> list[dict[str, str]]:
    with (PAIRS / name).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def build_tokenizer(pairs: list[dict[str, str]]):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.normalizer = normalizers.NFKC()
    backend.pre_tokenizer = pre_tokenizers.Metaspace()
    backend.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "</s>", "<unk>"])
    backend.train_from_iterator([p["source"] for p in pairs] + [p["target"] for p in pairs], trainer)
    backend.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def build_model(family: str, vocab: int):
    from transformers import (
        BartConfig,
        BartForConditionalGeneration,
        MarianConfig,
        MarianMTModel,
        T5Config,
        T5ForConditionalGeneration,
    )

    common = {"vocab_size": vocab, "pad_token_id": 0, "eos_token_id": 1}
    if family == "marian":
        config = MarianConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
                              decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128,
                              decoder_start_token_id=0, forced_eos_token_id=1, **common)
        return MarianMTModel(config)
    if family == "bart":
        config = BartConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                            encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=128, bos_token_id=1,
                            decoder_start_token_id=1, forced_eos_token_id=1, **common)
        return BartForConditionalGeneration(config)
    config = T5Config(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4, decoder_start_token_id=0,
                      **common)
    return T5ForConditionalGeneration(config)


def train(model, tokenizer, pairs: list[dict[str, str]], seconds: float) -> None:
    """AdamW on the shortest pairs, pre-tokenized, until `seconds` pass: enough for source-dependent greedy outputs."""
    short = sorted(pairs, key=lambda p: len(p["source"]))[:48]
    batches = []
    for start in range(0, len(short), 16):
        chunk = short[start:start + 16]
        batch = tokenizer([p["source"] for p in chunk], padding=True, return_tensors="pt")
        labels = tokenizer([p["target"] for p in chunk], padding=True, return_tensors="pt").input_ids
        labels[labels == tokenizer.pad_token_id] = -100
        batches.append((batch, labels))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    deadline, step = time.monotonic() + seconds, 0
    while time.monotonic() < deadline:
        batch, labels = batches[step % len(batches)]
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        step += 1
    model.eval()
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def pairs() -> list[dict[str, str]]:
    return read_pairs("train.tsv")


@pytest.fixture(scope="session")
def tokenizer(pairs):
    return build_tokenizer(pairs)


def _trained(family: str, tokenizer, pairs, folder: Path, seconds: float):
    torch.manual_seed(0)
    model = build_model(family, len(tokenizer))
    train(model, tokenizer, pairs, seconds)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return model


@pytest.fixture(scope="session")
def marian(tmp_path_factory, tokenizer, pairs):
    folder = tmp_path_factory.mktemp("marian")
    return _trained("marian", tokenizer, pairs, folder, TRAIN_SECONDS), folder


@pytest.fixture(scope="session")
def sentences(pairs) -> list[str]:
    """Real sources: the shortest training ones (which the tiny model learned) and unseen eval ones."""
    return [p["source"] for p in sorted(pairs, key=lambda p: len(p["source"]))[:4]] + \
        [p["source"] for p in read_pairs("eval.tsv")[:3]]


def _feeds(tokenizer, texts):
    for text in texts:
        batch = tokenizer([text], return_tensors="np")
        yield batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)


def _exported(model, folder: Path) -> Path:
    from edge_compress.export.seq2seq import export_seq2seq

    export_seq2seq(model, folder)
    model.config.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def marian_export(marian, tmp_path_factory) -> Path:
    return _exported(marian[0], tmp_path_factory.mktemp("marian-onnx"))


# --------------------------------------------------------------------------- export and generation


def _decoding(model, beams: int = 1, tokens: int = 24):
    from edge_compress.compress.tasks.translation.generate import decoding_from_config

    return decoding_from_config(model.config, model.generation_config, tokens, beams)


@pytest.mark.parametrize("beams", [1, 3])
def test_onnx_generates_what_pytorch_generates(marian, marian_export, tokenizer, sentences, beams):
    """Token for token: plain onnxruntime on the two graphs, the same loop on PyTorch, and model.generate itself."""
    from edge_compress.compress.tasks.translation.generate import translate_ids
    from edge_compress.compress.tasks.translation.runner import OnnxSeq2Seq, TorchSeq2Seq

    model = marian[0]
    decoding = _decoding(model, beams)
    onnx_run, torch_run = OnnxSeq2Seq(marian_export, 1), TorchSeq2Seq(model)
    outputs = []
    for ids, mask in _feeds(tokenizer, sentences):
        got = translate_ids(onnx_run, ids, mask, decoding)[0]
        assert got == translate_ids(torch_run, ids, mask, decoding)[0]
        with torch.inference_mode():
            expected = model.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                      max_new_tokens=24, num_beams=beams).tolist()[0][1:]  # without the start token
        assert got == expected
        outputs.append(tuple(got))
    assert len(set(outputs)) >= 4, "the tiny model should translate different sources differently"


def test_greedy_batch_equals_one_by_one(marian, marian_export, tokenizer, sentences):
    from edge_compress.compress.tasks.translation.generate import greedy
    from edge_compress.compress.tasks.translation.runner import OnnxSeq2Seq

    decoding, runner = _decoding(marian[0]), OnnxSeq2Seq(marian_export, 1)
    batch = tokenizer(sentences[:4], padding=True, return_tensors="np")
    together = greedy(runner, batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64), decoding)
    alone = [greedy(runner, ids, mask, decoding)[0] for ids, mask in _feeds(tokenizer, sentences[:4])]
    assert together == alone


def test_the_folder_loads_with_exported_model_and_matches_onnxruntime(marian_export, tokenizer, sentences):
    from edge_compress.compress.tasks.translation.runner import OnnxSeq2Seq, empty_cache
    from transformers.exporters import ExportedModel

    exported = ExportedModel.from_pretrained(marian_export, device="cpu")
    assert set(exported.components) == {"encoder", "decoder"}
    ids, mask = next(_feeds(tokenizer, sentences))
    encoder = exported.runners["encoder"](input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask))
    runner = OnnxSeq2Seq(marian_export, 1)
    encoded = runner.encode(ids, mask)
    np.testing.assert_allclose(encoder["cross.0.key"].numpy(), encoded.cross[0], atol=1e-6)
    past = empty_cache(encoded, 1)
    feed = {"decoder_input_ids": torch.tensor([[0]]), "encoder_attention_mask": torch.from_numpy(mask),
            **{n: torch.from_numpy(t) for n, t in zip(runner.past_names, past)},
            **{n: torch.from_numpy(t) for n, t in zip(runner.cross_names, encoded.cross)}}
    decoder = exported.runners["decoder"](**feed)
    logits, _ = runner.step(np.array([[0]]), mask, past, encoded.cross)
    np.testing.assert_allclose(decoder["logits"].numpy()[:, -1], logits, atol=1e-5)
    assert decoder["present.0.key"].shape[2] == 1  # the self-attention cache grew by the one token

    import onnx

    tables = [t for t in onnx.load(str(marian_export / "decoder.onnx")).graph.initializer
              if sorted(t.dims) == sorted([len(tokenizer), 32])]
    assert len(tables) == 1  # the tied LM head reads the embedding table (Transpose), not a copy of it


@pytest.mark.parametrize("family", ["t5", "bart"])
def test_t5_and_bart_export_generates_what_generate_does(family, tokenizer, pairs, sentences, tmp_path):
    from edge_compress.compress.tasks.translation.generate import translate_ids
    from edge_compress.compress.tasks.translation.runner import OnnxSeq2Seq

    model = _trained(family, tokenizer, pairs, tmp_path / "model", 3.0)
    runner = OnnxSeq2Seq(_exported(model, tmp_path / "onnx"), 1)
    decoding = _decoding(model)
    for ids, mask in _feeds(tokenizer, sentences[:4]):
        with torch.inference_mode():
            expected = model.generate(input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask),
                                      max_new_tokens=24, num_beams=1).tolist()[0][1:]
        assert translate_ids(runner, ids, mask, decoding)[0] == expected


def test_int8_dynamic_graphs_quantize_each_graph_and_still_translate(marian_export, tokenizer, sentences, tmp_path):
    from edge_compress.compress.quantize.presets import PRESETS
    from edge_compress.compress.tasks.translation.generate import translate_ids
    from edge_compress.compress.tasks.translation.runner import OnnxSeq2Seq
    from edge_compress.compress.tasks.translation.variants import _dynamic, _per_graph, component_bytes

    class Inp:  # the BuildInput fields the build reads
        source = marian_export / "decoder.onnx"
        folder = tmp_path
        ctx = type("Ctx", (), {"preset": next(iter(PRESETS.values()))})()
    path, learned = _per_graph(_dynamic)(Inp())
    assert learned["components"] == component_bytes(tmp_path)
    assert all(learned["components"][c] < component_bytes(marian_export)[c] for c in ("encoder", "decoder"))
    runner = OnnxSeq2Seq(path.parent, 1)
    for ids, mask in _feeds(tokenizer, sentences[:2]):
        assert translate_ids(runner, ids, mask, _decoding_of(marian_export))[0]


def _decoding_of(folder: Path):
    from edge_compress.compress.tasks.translation.generate import decoding_from_config
    from transformers import AutoConfig, GenerationConfig

    return decoding_from_config(AutoConfig.from_pretrained(folder), GenerationConfig.from_pretrained(folder), 24, 1)


# --------------------------------------------------------------------------- the run, end to end


RECIPE = """task: translation
validate:
  latency_samples: 5
  warmup: 1
translation:
  max_new_tokens: 24
  calib_sentences: 6
  calib_decode_steps: 4
"""


def _run(model: Path, out: Path, eval_data: Path, recipe: str, tmp: Path, *extra: str):
    from edge_compress.compress.cli import app
    from typer.testing import CliRunner

    (tmp / "recipe.yaml").write_text(recipe)
    return CliRunner().invoke(app, ["run", str(model), "--out", str(out), "--eval-data", str(eval_data), "--recipe",
                                    str(tmp / "recipe.yaml"), "--threads", "1", *extra])


@pytest.fixture(scope="session")
def eval_data(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pairs")
    rows = sorted(read_pairs("train.tsv"), key=lambda p: len(p["source"]))[:4] + read_pairs("eval.tsv")[:4]
    with (folder / "eval.tsv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, ["source", "target"], delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    (folder / "train.tsv").write_text((PAIRS / "train.tsv").read_text(encoding="utf-8"), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def mt_run(marian, eval_data, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    result = _run(marian[1], tmp / "out", eval_data / "eval.tsv", RECIPE, tmp)
    assert result.exit_code == 0, result.output
    return tmp / "out"


def test_every_variant_is_built_and_scored_by_bleu(mt_run):
    report = json.loads((mt_run / "report.json").read_text())
    assert report["task"] == "translation" and report["metric"] == "bleu"
    variants = {v["name"]: v for v in report["variants"]}
    assert set(variants) == {"onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static", "onnx-int4-decoder"}
    assert all(v["error"] is None for v in variants.values()), [v["error"] for v in variants.values()]
    assert variants["onnx-fp32"]["metrics"]["exact_match_vs_float"] == 100.0  # parity: the same tokens as PyTorch
    assert all(v["metrics"]["agreement"] == v["metrics"]["exact_match_vs_float"] for v in variants.values())
    for entry in [report["baseline"], *variants.values()]:
        for key in ("bleu", "chrf", "ms_per_sentence", "encoder_ms", "decode_ms_per_token"):
            assert key in entry["metrics"], (entry["name"], key)
    for name, entry in variants.items():
        components = entry["settings"]["components"]
        assert set(components) == {"encoder", "decoder"}
        assert entry["size_bytes"] == pytest.approx(sum(components.values()), rel=0.01)  # every graph file counted
    for name in ("onnx-int8-dynamic", "onnx-int8-static"):
        graph = variants[name]["graph"]
        assert graph["int8_ops"] and graph["float_weight_matmuls"] == 0, graph  # both graphs, every MatMul int8
    int4 = variants["onnx-int4-decoder"]
    assert int4["graph"]["weight_only_ops"]["MatMulNBits"] and int4["graph"]["float_weight_matmuls"] == 0
    assert int4["settings"]["components"]["decoder"] < variants["onnx-int8-dynamic"]["settings"]["components"]["decoder"]
    assert report["eval"]["labelled"] is True and report["calibration"]["decode_steps"] == 4


@pytest.mark.parametrize("variant", ["onnx-fp32", "onnx-int8-static"])
def test_variant_folders_load_in_onnxruntime_and_exported_model(mt_run, variant):
    import onnxruntime as ort
    from transformers.exporters import ExportedModel

    folder = mt_run / "variants" / variant
    for graph in ("encoder.onnx", "decoder.onnx"):
        ort.InferenceSession(str(folder / graph), providers=["CPUExecutionProvider"])
    assert set(ExportedModel.from_pretrained(folder, device="cpu").components) == {"encoder", "decoder"}
    card = (folder / "README.md").read_text()
    assert "encoder.onnx" in card and "compress generate" in card and "model.onnx" not in card


def test_generate_translates_with_the_selected_variant(mt_run, marian, tokenizer, sentences):
    from edge_compress.compress.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["generate", str(mt_run), sentences[0], "--threads", "1"])
    assert result.exit_code == 0, result.output
    with torch.inference_mode():
        expected = marian[0].generate(**tokenizer([sentences[0]], return_tensors="pt"), max_new_tokens=64)
    assert result.output.strip() == tokenizer.decode(expected[0], skip_special_tokens=True).strip()


def test_generate_beams_decodes_by_beam_search_as_model_generate_does(mt_run, marian, tokenizer, sentences, monkeypatch):
    """--beams N runs the ORT loop's beam search: the same text as model.generate(num_beams=N), and the run's own
    decoding (greedy here) when the flag is left out. The loop is watched too: a tiny model's greedy and beam texts
    can coincide, so text equality alone would not show the beams were used."""
    from edge_compress.compress.cli import app
    from edge_compress.compress.tasks.translation import generate as loop
    from typer.testing import CliRunner

    used, real = [], loop.translate_ids
    monkeypatch.setattr(loop, "translate_ids", lambda runner, ids, mask, decoding: used.append(decoding.num_beams)
                        or real(runner, ids, mask, decoding))
    runner = CliRunner()
    outputs = {}
    for beams in (1, 3):
        with torch.inference_mode():
            expected = marian[0].generate(**tokenizer([sentences[2]], return_tensors="pt"), max_new_tokens=64,
                                          num_beams=beams)
        outputs[beams] = tokenizer.decode(expected[0], skip_special_tokens=True).strip()
        result = runner.invoke(app, ["generate", str(mt_run), sentences[2], "--threads", "1", "--beams", str(beams)])
        assert result.exit_code == 0, result.output
        assert result.output.strip() == outputs[beams]
    default = runner.invoke(app, ["generate", str(mt_run), sentences[2], "--threads", "1"])
    assert default.exit_code == 0 and default.output.strip() == outputs[1]  # the run decoded greedy (num_beams 1)
    assert used == [1, 3, 1]


@pytest.mark.parametrize("args, message", [(["--beams", "0"], "at least 1"), (["--sample"], "--sample is for causal LMs")])
def test_generate_refuses_bad_decoding_flags_for_translation(mt_run, sentences, args, message):
    from edge_compress.compress.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["generate", str(mt_run), sentences[0], *args])
    assert result.exit_code == 2, result.output
    assert message in result.output and "fix:" in result.output


def test_generate_refuses_beams_for_a_causal_lm(tmp_path):
    """Checked before any model is loaded: a folder that is no translation run gets --beams refused with a fix."""
    from edge_compress.compress.commands.generate import generate

    with pytest.raises(CompressError, match="for translation models"):
        generate(tmp_path, "hello", num_beams=3)


def test_mobile_package_holds_both_graphs_in_ort_format_and_translates_as_scored(marian, eval_data, tokenizer, sentences,
                                                                                tmp_path):
    """--target mobile: encoder.ort + decoder.ort + one ops config for both, scored by the run's loop and timed on this
    host, and the package's two graphs translate what the selected variant translates."""
    import onnxruntime as ort
    from edge_compress.compress.tasks.translation.generate import decoding_from_config, translate_ids
    from edge_compress.compress.tasks.translation.runner import OnnxSeq2Seq

    recipe = RECIPE + "  int8_static: false\n  int4_decoder: false\n"
    result = _run(marian[1], tmp_path / "out", eval_data / "eval.tsv", recipe, tmp_path, "--target", "mobile")
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    package = report["package"]
    assert package["variant"] == report["selected"]
    assert package["ort_models"] == ["package/encoder.ort", "package/decoder.ort"]
    assert {"encoder.ort", "decoder.ort", "tokenizer.json", "config.json"} <= set(package["sizes"])
    assert not [n for n in package["sizes"] if n.endswith((".onnx", ".data"))]  # the .ort replace the graphs
    ops = (out / package["ops_config"]).read_text()
    assert "com.microsoft" in ops or "ai.onnx" in ops
    check = package["checks"]["ort_model"]
    assert check["error"] is None and check["metrics"]["exact_match_vs_float"] >= 0 and "bleu" in check["metrics"]
    assert check["latency_ms"]["p50"] > 0
    selected = next(v for v in report["variants"] if v["name"] == report["selected"])
    assert check["metrics"]["bleu"] == selected["metrics"]["bleu"]  # the same graphs, another file format
    for graph in ("encoder.ort", "decoder.ort"):
        ort.InferenceSession(str(out / "package" / graph), providers=["CPUExecutionProvider"])
    decoding = decoding_from_config(marian[0].config, marian[0].generation_config, 24, 1)
    batch = tokenizer([sentences[0]], return_tensors="np")
    ids, mask = batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)
    assert translate_ids(OnnxSeq2Seq(out / "package", 1, ort_format=True), ids, mask, decoding) == \
        translate_ids(OnnxSeq2Seq(out / selected["path"], 1), ids, mask, decoding)


# --------------------------------------------------------------------------- bad input


def test_missing_references_score_agreement_only(marian, eval_data, tmp_path):
    sources = tmp_path / "sources.tsv"
    sources.write_text("source\n" + "\n".join(r["source"] for r in read_pairs("eval.tsv")[:3]) + "\n", encoding="utf-8")
    recipe = RECIPE + "  int8_static: false\n  int8_dynamic: false\n  int4_decoder: false\n"
    result = _run(marian[1], tmp_path / "out", sources, recipe, tmp_path, "--calib-data", str(eval_data / "train.tsv"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["metric"] == "chrf_vs_float" and report["eval"]["labelled"] is False
    assert "agreement with the float model only" in report["eval"]["metrics"]
    assert "bleu" not in report["baseline"]["metrics"] and report["baseline"]["metrics"]["chrf_vs_float"] == 100.0


def test_a_checkpoint_without_a_decoder_start_token_is_refused_with_a_fix(tokenizer, eval_data, tmp_path):
    """T5 (unlike Marian, whose config requires one) lets decoder_start_token_id be None: refused before any slow step."""
    model = build_model("t5", len(tokenizer))
    model.config.decoder_start_token_id = None
    model.generation_config.decoder_start_token_id = None
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    result = _run(tmp_path / "model", tmp_path / "out", eval_data / "eval.tsv", RECIPE, tmp_path)
    assert result.exit_code == 2, result.output
    assert "no decoder_start_token_id" in result.output and "fix:" in result.output
    assert not (tmp_path / "out").exists()


def test_a_config_field_of_the_wrong_type_is_a_compress_error(marian, eval_data, tmp_path):
    """Marian's config validates its fields (transformers 5): a null decoder_start_token_id fails to load, with a fix."""
    folder = tmp_path / "model"
    folder.mkdir()
    for file in marian[1].iterdir():
        (folder / file.name).write_bytes(file.read_bytes())
    config = json.loads((folder / "config.json").read_text())
    config["decoder_start_token_id"] = None
    (folder / "config.json").write_text(json.dumps(config))
    result = _run(folder, tmp_path / "out", eval_data / "eval.tsv", RECIPE, tmp_path)
    assert result.exit_code == 2, result.output
    assert "decoder_start_token_id" in result.output and "fix:" in result.output


def test_empty_sources_are_refused(marian, tmp_path):
    bad = tmp_path / "eval.tsv"
    bad.write_text("source\ttarget\nHallo.\tHallo.\n\tLeer.\n", encoding="utf-8")
    result = _run(marian[1], tmp_path / "out", bad, RECIPE, tmp_path)
    assert result.exit_code == 2 and "empty 'source'" in result.output


def test_generate_refuses_an_empty_source(mt_run):
    from edge_compress.compress.tasks.translation.translate import translate

    with pytest.raises(CompressError, match="empty"):
        translate(mt_run, "   ")


def test_a_model_that_is_not_an_encoder_decoder_is_refused():
    from edge_compress.compress.tasks.translation.task import Translation
    from transformers import BertConfig

    with pytest.raises(CompressError, match="not an encoder-decoder"):
        Translation().check_architecture(BertConfig(), "bert-tiny")


def test_generate_puts_the_runs_source_prefix_before_the_sentence(mt_run, sentences, tmp_path):
    """translation.source_prefix (T5's 'translate English to German: ') is read back from the variant's manifest."""
    import shutil

    from edge_compress.compress.tasks.translation.translate import translate

    folder = tmp_path / "variant"
    shutil.copytree(mt_run / "variants" / "onnx-fp32", folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["recipe"]["translation"]["source_prefix"] == ""
    manifest["recipe"]["translation"]["source_prefix"] = sentences[1] + " "
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert translate(folder, sentences[0], 24, 1) == translate(mt_run / "variants" / "onnx-fp32", sentences[1] + " " + sentences[0], 24, 1)
