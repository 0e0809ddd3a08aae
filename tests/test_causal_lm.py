"""causal-lm: KV-cache export, int8/int4 variants, LM metrics, generation, and every user error.

A tiny GPT-2 (2 layers, n_embd 32, word-level tokenizer from the project's LM text)
is trained for a few seconds so greedy generation and perplexity mean something.
"""
from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from edge_compress.calib_data import LM_TEXT_EVAL, LM_TEXT_TRAIN
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast


def _tokenizer(text: str) -> PreTrainedTokenizerFast:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

    words = re.findall(r"\w+|[^\w\s]", text.lower())
    common = [w for w, _ in Counter(words).most_common(1000)]
    vocab = {w: i for i, w in enumerate(["<|endoftext|>", "<unk>", *common])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>", unk_token="<unk>",
                                   model_input_names=["input_ids", "attention_mask"])


def train_on_lm_text(model, tokenizer, text: str, steps: int):
    """`steps` of AdamW on random 64-token windows of `text` (seeded): enough for greedy decoding to be non-trivial."""
    ids = torch.tensor(tokenizer(text.replace("\n", " <|endoftext|> "))["input_ids"])
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        offsets = torch.randint(0, len(ids) - 65, (16,), generator=generator)
        batch = torch.stack([ids[o:o + 64] for o in offsets])
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def make_tiny_lm(folder: Path, steps: int = 120) -> Path:
    """Train a 2-layer GPT-2 on calib_data/lm_text/train.txt for `steps` steps (~3 s); save model + tokenizer."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and stays fast on a busy machine
    text = LM_TEXT_TRAIN.read_text()
    tokenizer = _tokenizer(text)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=128,
                        bos_token_id=0, eos_token_id=0)
    model = train_on_lm_text(GPT2LMHeadModel(config), tokenizer, text, steps)
    torch.set_num_threads(threads)
    model.eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


SPEC = {"context": 64, "stride": 32, "max_eval_tokens": 768, "prompts": 5, "prompt_tokens": 8, "new_tokens": 10, "batch_size": 2,
            "calib_samples": 6, "calib_max_length": 32, "calib_decode_steps": 3}


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm") / "ckpt")


@pytest.fixture(scope="module")
def lm_run(tiny_lm, tmp_path_factory):
    """One `compress run --task causal-lm`, invoked as a user would; `generate` then picks its selected variant."""
    import yaml
    from edge_compress.compress.cli import app
    from typer.testing import CliRunner

    work = tmp_path_factory.mktemp("lm-out")
    recipe = work / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"lm": SPEC}))
    out = work / "out"
    result = CliRunner().invoke(app, ["run", str(tiny_lm), "--task", "causal-lm", "--out", str(out), "--eval-data", str(LM_TEXT_EVAL),
                                      "--calib-data", str(LM_TEXT_TRAIN), "--recipe", str(recipe), "--max-accuracy-drop", "5",
                                      "--threads", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    return out, report, report["eval"]


VARIANTS = ["onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static", "onnx-int8-weight-only", "onnx-int4-weight-only"]


def _variant(report: dict, name: str) -> dict:
    return next(v for v in report["variants"] if v["name"] == name)


def test_every_variant_builds_and_reports_lm_metrics(lm_run):
    out, report, eval_info = lm_run
    assert [v["name"] for v in report["variants"]] == VARIANTS
    assert eval_info["context"] == 64 and eval_info["stride"] == 32
    for entry in [report["baseline"], *report["variants"]]:
        assert entry["error"] is None, entry
        assert {"perplexity", "ttft_ms", "decode_ms_per_token", "tokens_per_s", "tokens_per_s_batch"} <= set(entry["metrics"])
        assert entry["latency_ms"]["batch_size"] == 1 and entry["latency_ms_batch"]["batch_size"] == 2
        assert entry["size_bytes"] > 0 and entry["params"] > 0
    for entry in report["variants"]:
        assert {"agreement", "greedy_exact_match", "perplexity_change_pct"} <= set(entry["metrics"])
        assert (out / entry["path"] / "manifest.json").exists() and (out / entry["path"] / "config.json").exists()
        assert abs(entry["metrics"]["perplexity_change_pct"]) < 5, entry["metrics"]
        assert entry["metrics"]["agreement"] > 90
    assert report["baseline"]["metrics"]["perplexity"] < 200  # trained: far below the 1000-word uniform guess
    assert json.loads((out / "report.json").read_text())["metric"] == "perplexity"


def test_onnx_fp32_generates_like_pytorch(lm_run, tiny_lm):
    from edge_compress.export.ort_lm import load_ort_lm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, report, _ = lm_run
    fp32 = _variant(report, "onnx-fp32")
    assert fp32["metrics"]["greedy_exact_match"] == 100 and fp32["metrics"]["agreement"] == 100
    assert abs(fp32["metrics"]["perplexity"] - report["baseline"]["metrics"]["perplexity"]) < 1e-3
    ort_model = load_ort_lm(out / fp32["path"], 1)
    torch_model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    inputs = tokenizer("the customer asked about the order", return_tensors="pt")
    expected = torch_model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=0)
    assert torch.equal(ort_model.generate(**inputs, max_new_tokens=12, do_sample=False, pad_token_id=0), expected)
    assert any(i.name.startswith("past_key_values") for i in onnx.load(out / fp32["path"] / "model.onnx").graph.input)


@pytest.mark.parametrize("name", ["onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static", "onnx-int4-weight-only"])
def test_variant_folders_load_and_generate_with_exported_model(lm_run, tiny_lm, tmp_path, name):
    """Issue 13: every LM variant folder loads with transformers' ExportedModel.from_pretrained and generates through it
    (cache seeded with zero-length tensors): the fp32 tokens are PyTorch's, each variant's are those our ONNX Runtime
    loop (`compress generate`'s) gives on the same folder. A quantized folder carries the fp32 export's manifest,
    as the builder finishes it (same I/O names)."""
    from edge_compress.export.hf_manifest import finish_folder, read_manifest
    from edge_compress.export.ort_lm import exported_generate, load_ort_lm
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.exporters import ExportedModel

    out, report, _ = lm_run
    fp32 = out / _variant(report, "onnx-fp32")["path"]
    folder = shutil.copytree(out / _variant(report, name)["path"], tmp_path / name)
    finish_folder(folder, read_manifest(fp32))
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    ids = tokenizer("the customer asked about the order", return_tensors="pt")["input_ids"]
    tokens = exported_generate(ExportedModel.from_pretrained(folder), ids, 8, tokenizer.eos_token_id)
    expected = load_ort_lm(folder, 1).generate(ids, max_new_tokens=8)
    assert tokens.shape[1] > ids.shape[1] + 2 and torch.equal(tokens, expected)
    if name == "onnx-fp32":
        torch_model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
        reference = torch_model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0)
        assert torch.equal(tokens, reference)


def _ops(path: Path) -> dict[str, int]:
    from edge_compress.export.runtime import graph_op_counts

    return graph_op_counts(path / "model.onnx")


def _float_tables(path: Path, vocab: int, hidden: int) -> int:
    """Float initializers shaped like the embedding table or its transpose."""
    model = onnx.load(path / "model.onnx")
    return sum(1 for t in model.graph.initializer
               if t.data_type == onnx.TensorProto.FLOAT and sorted(t.dims) == sorted([vocab, hidden]))


def test_quantized_graphs_hold_the_expected_kernels_and_one_shared_table(lm_run, tiny_lm):
    from transformers import AutoConfig

    out, report, _ = lm_run
    config = AutoConfig.from_pretrained(tiny_lm)
    int4 = out / _variant(report, "onnx-int4-weight-only")["path"]
    ops = _ops(int4)
    assert ops["MatMulNBits"] == 4 * config.n_layer + 1 and ops["GatherBlockQuantized"] == 1
    node = next(n for n in onnx.load(int4 / "model.onnx").graph.node if n.op_type == "MatMulNBits" and "lm_head" not in n.name)
    assert onnx.helper.get_attribute_value(next(a for a in node.attribute if a.name == "bits")) == 4
    head = next(n for n in onnx.load(int4 / "model.onnx").graph.node if n.op_type == "MatMulNBits" and "lm_head" in n.name)
    gather = next(n for n in onnx.load(int4 / "model.onnx").graph.node if n.op_type == "GatherBlockQuantized")
    assert head.input[1] == gather.input[0]  # one quantized table serves the embedding and the LM head
    assert _ops(out / _variant(report, "onnx-int8-dynamic")["path"])["MatMulInteger"] == 4 * config.n_layer
    assert _ops(out / _variant(report, "onnx-int8-static")["path"])["QuantizeLinear"] > 0
    for name in VARIANTS:
        expected = 1 if name == "onnx-fp32" else 0
        assert _float_tables(out / _variant(report, name)["path"], config.vocab_size, config.n_embd) == expected, name
    assert _variant(report, "onnx-int4-weight-only")["size_bytes"] < _variant(report, "onnx-fp32")["size_bytes"]


def test_dedupe_restores_a_duplicated_lm_head(lm_run):
    import onnxruntime as ort
    from edge_compress.compress.tasks.causal_lm.calibration import calibration_feeds
    from edge_compress.export.tied import dedupe_tied, find_tied_head

    out, report, _ = lm_run
    path = out / _variant(report, "onnx-fp32")["path"] / "model.onnx"
    model = onnx.load(path)
    tied = find_tied_head(model)
    assert tied is not None
    # Materialise the transpose as its own initializer, as exporters do for some architectures.
    table = next(t for t in model.graph.initializer if t.name == tied.table)
    model.graph.initializer.append(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(table).T.copy(), "head_copy"))
    model.graph.node.remove(next(n for n in model.graph.node if n.name == tied.transpose.name))
    next(n for n in model.graph.node if n.name == tied.matmul.name).input[1] = "head_copy"
    assert find_tied_head(model) is None
    saved = dedupe_tied(model)
    assert saved == onnx.numpy_helper.to_array(table).nbytes and find_tied_head(model) is not None
    feed = calibration_feeds(path, __import__("transformers").AutoTokenizer.from_pretrained(path.parent), ["the order was late"], 8, 1, 1)[0]
    expected = ort.InferenceSession(str(path)).run(["logits"], feed)[0]
    actual = ort.InferenceSession(model.SerializeToString()).run(["logits"], feed)[0]
    np.testing.assert_allclose(actual, expected, atol=1e-5)


def test_calibration_covers_prefill_and_decode(lm_run):
    from edge_compress.compress.tasks.causal_lm.calibration import calibration_feeds
    from transformers import AutoTokenizer

    out, report, _ = lm_run
    folder = out / _variant(report, "onnx-fp32")["path"]
    feeds = calibration_feeds(folder / "model.onnx", AutoTokenizer.from_pretrained(folder), ["the parcel arrived a day early"], 16, 2, 1)
    assert [f["input_ids"].shape[1] for f in feeds][1:] == [1, 1] and feeds[0]["input_ids"].shape[1] > 1
    key = "past_key_values.layers.0.keys"
    assert feeds[0][key].shape[2] == 0 and feeds[2][key].shape[2] == feeds[0]["input_ids"].shape[1] + 1


def test_generate_streams_from_the_selected_variant(lm_run, capsys):
    from edge_compress.compress.commands.generate import generate, resolve_variant

    out, report, _ = lm_run
    assert resolve_variant(out) == out / _variant(report, report["selected"])["path"]
    text = generate(out, "she ordered the", max_new_tokens=6, threads=1)
    assert text and text.strip() in capsys.readouterr().out.strip()


# ---- errors a user can fix -------------------------------------------------------------------------------

def test_prompt_longer_than_the_context_is_refused(lm_run):
    from edge_compress.compress.commands.generate import generate
    from edge_compress.compress.errors import CompressError

    out, _report, _ = lm_run
    with pytest.raises(CompressError, match="context of 128 tokens"):
        generate(out, "the order " * 70, max_new_tokens=4, threads=1)


def test_prompt_longer_than_the_context_gets_a_usable_fix(lm_run):
    from edge_compress.compress.commands.generate import generate
    from edge_compress.compress.errors import CompressError

    out, _, _ = lm_run
    with pytest.raises(CompressError) as info:
        generate(out, "the order " * 70, max_new_tokens=4, threads=1)
    assert "shorten the prompt" in info.value.hint and "at most 0" not in info.value.hint


def test_generate_with_a_tokenizer_that_returns_token_type_ids(lm_run, tmp_path):
    """`compress run` succeeded on this model, so `compress generate` must too, whatever extra inputs its tokenizer returns."""
    from edge_compress.compress.commands.generate import generate, resolve_variant
    from transformers import AutoTokenizer

    out, _, _ = lm_run
    folder = shutil.copytree(resolve_variant(out), tmp_path / "variant")
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["model_input_names"] = ["input_ids", "token_type_ids", "attention_mask"]
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    assert "token_type_ids" in AutoTokenizer.from_pretrained(folder)("she ordered the")
    assert generate(folder, "she ordered the", max_new_tokens=4, threads=1, stream=False)


def test_empty_eval_text_is_refused(tmp_path):
    from edge_compress.compress.errors import CompressError
    from edge_compress.compress.tasks.causal_lm.data import load_lm_text

    (tmp_path / "empty.txt").write_text("\n\n  \n")
    with pytest.raises(CompressError, match="holds no text"):
        load_lm_text(str(tmp_path / "empty.txt"))
    (tmp_path / "rows.jsonl").write_text('{"text": "first paragraph"}\n{"text": "second"}\n')
    assert load_lm_text(str(tmp_path / "rows.jsonl")).texts == ["first paragraph", "second"]
    (tmp_path / "paras.txt").write_text("one\nline\n\ntwo\n")
    assert load_lm_text(str(tmp_path / "paras.txt")).texts == ["one line", "two"]
    (tmp_path / "lines.txt").write_text("".join(f"text {i}\n" for i in range(40)) + "\n" + "last\n")
    assert len(load_lm_text(str(tmp_path / "lines.txt")).texts) == 41


def test_too_short_eval_text_and_too_long_context_are_refused(tiny_lm):
    from edge_compress.compress.errors import CompressError
    from edge_compress.compress.tasks.causal_lm.evaluate import LMEvaluation
    from edge_compress.compress.tasks.causal_lm.spec import LMSpec
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    with pytest.raises(CompressError, match="shorter than two tokens"):
        LMEvaluation(["order"], tokenizer, LMSpec(**SPEC), 128)
    with pytest.raises(CompressError, match="lm.context"):
        LMEvaluation(["the order"], tokenizer, LMSpec(**{**SPEC, "context": 256}), 128)


def test_tokenizer_without_pad_or_eos_is_refused(tiny_lm):
    from edge_compress.compress.errors import CompressError
    from edge_compress.compress.tasks.causal_lm.task import CausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm)
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    CausalLM().prepare(model, tokenizer)  # eos stands in for pad
    assert tokenizer.pad_token == tokenizer.eos_token and tokenizer.padding_side == "left"
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    tokenizer.eos_token = None
    tokenizer.pad_token = None
    with pytest.raises(CompressError, match="neither a pad nor an eos token"):
        CausalLM().prepare(model, tokenizer)


def test_export_without_past_is_refused(tiny_lm, tmp_path, monkeypatch):
    """A graph without cache inputs (an exporter that dropped them) and an architecture without a plain KV cache
    (recurrent state) are both refused with a fix."""
    from types import SimpleNamespace

    import edge_compress.compress.tasks.causal_lm.export as lm_export
    from edge_compress.compress.errors import CompressError
    from edge_compress.export.lm_export import NoKVCacheError, check_plain_cache
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_lm), AutoTokenizer.from_pretrained(tiny_lm)
    real = lm_export.export_causal_lm_graph

    def without_past(model, folder, opset=None):
        path = real(model, folder, opset)
        graph = onnx.load(str(path))
        for value in [i for i in graph.graph.input if i.name.startswith("past_key_values")]:
            graph.graph.input.remove(value)
        onnx.save(graph, str(path))
        return path

    monkeypatch.setattr(lm_export, "export_causal_lm_graph", without_past)
    with pytest.raises(CompressError, match="no past_key_values"):
        lm_export.export_causal_lm(model, tokenizer, tmp_path / "x")
    recurrent = SimpleNamespace(layers=[SimpleNamespace(keys=torch.zeros(1, 2, 3, 4), values=torch.zeros(1, 2, 3, 4),
                                                        conv_states=torch.zeros(1, 4))])
    with pytest.raises(NoKVCacheError, match="not a plain key/value cache"):
        check_plain_cache(model, recurrent)
    monkeypatch.setattr(lm_export, "export_causal_lm_graph", lambda *a: (_ for _ in ()).throw(NoKVCacheError("no KV cache")))
    with pytest.raises(CompressError) as info:
        lm_export.export_causal_lm(model, tokenizer, tmp_path / "y")
    assert "supported decoder" in info.value.hint


class _Recorder(torch.nn.Module):
    """Stands in for an LM: uniform logits, records every window it is fed."""

    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab, self.seen = vocab, []

    def forward(self, input_ids, attention_mask=None):
        from types import SimpleNamespace

        self.seen.append(input_ids[0].tolist())
        return SimpleNamespace(logits=torch.zeros(1, input_ids.shape[1], self.vocab))


def test_perplexity_windows_start_with_bos_when_the_tokenizer_adds_it(tiny_lm):
    """Gemma-style tokenizers (BOS in front of every text) get BOS at the start of every window; GPT-2 style do not."""
    from edge_compress.compress.tasks.causal_lm.evaluate import LMEvaluation, leading_bos
    from edge_compress.compress.tasks.causal_lm.spec import LMSpec
    from tokenizers import processors
    from transformers import AutoTokenizer

    texts = LM_TEXT_EVAL.read_text().splitlines()[:40]
    spec = LMSpec(context=16, stride=8, max_eval_tokens=100, prompts=3, prompt_tokens=4, new_tokens=4)
    plain = AutoTokenizer.from_pretrained(tiny_lm)
    assert leading_bos(plain) is None
    with_bos = AutoTokenizer.from_pretrained(tiny_lm)
    with_bos.add_special_tokens({"bos_token": "<s>"})
    bos = with_bos.bos_token_id
    with_bos.backend_tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    assert leading_bos(with_bos) == bos
    for tokenizer, first in ((plain, None), (with_bos, bos)):
        evaluation = LMEvaluation(texts, tokenizer, spec, 128)
        model = _Recorder(len(tokenizer))
        outputs = evaluation.score(model, "t", generate=False).outputs
        scored, predictions = outputs.scored, outputs.predictions
        assert all(len(w) <= spec.context for w in model.seen)
        if first is None:
            assert scored == len(evaluation.ids) - 1 and len(evaluation.prefix) == 0
        else:
            assert all(w[0] == bos for w in model.seen) and bos not in evaluation.ids.tolist()
            assert scored == len(evaluation.ids)  # the first text token is scored too, predicted from BOS
            assert all(p[0].item() == bos for p in evaluation.prompts)
        assert len(predictions) == scored


def test_exclude_takes_node_names_and_patterns(lm_run, monkeypatch):
    from edge_compress.compress.quantize import lm as quantize
    from edge_compress.compress.quantize.lm import weight_matmuls
    from edge_compress.export.onnx_io import load_model

    warnings: list[str] = []
    monkeypatch.setattr(quantize, "warn", warnings.append)
    out, report, _ = lm_run
    model = load_model(out / _variant(report, "onnx-fp32")["path"] / "model.onnx")
    every = weight_matmuls(model)
    assert every and not any("lm_head" in n for n in every)
    assert weight_matmuls(model, [every[0]]) == every[1:]
    kept = weight_matmuls(model, ["*/mlp/c_proj/*"])
    assert kept and len(kept) < len(every) and not any("/mlp/c_proj/" in n for n in kept), every
    assert weight_matmuls(model, ["*/no_such_proj/*"]) == every
    assert len(warnings) == 1 and "no_such_proj" in warnings[0]


def test_int4_keeps_the_named_projections_at_8_bits(lm_run, tmp_path):
    from edge_compress.compress.quantize.lm import HeadSpec, quantize_weight_only, weight_matmuls
    from edge_compress.export.onnx_io import load_model

    out, report, _ = lm_run
    fp32 = out / _variant(report, "onnx-fp32")["path"] / "model.onnx"
    body = weight_matmuls(load_model(fp32))
    path = quantize_weight_only(fp32, tmp_path / "model.onnx", 4, 32, HeadSpec(), 4, keep_8bit=["*/mlp/c_proj/*", "*/no_such_proj/*"])
    bits = {n.name: onnx.helper.get_attribute_value(next(a for a in n.attribute if a.name == "bits"))
            for n in onnx.load(path).graph.node if n.op_type == "MatMulNBits"}
    eight = {name for name, b in bits.items() if b == 8 and "lm_head" not in name}
    assert len(bits) == len(body) + 1  # every body MatMul, plus the tied head
    assert eight and all("/mlp/c_proj/" in name for name in eight)
    assert sum(b == 4 for b in bits.values()) == len(body) - len(eight)
    assert _variant(report, "onnx-int4-weight-only")["settings"]["keep_8bit"]  # the recipe default is recorded


@pytest.fixture(scope="module")
def lm_mobile_run(tiny_lm, tmp_path_factory):
    """The LM through the same lifecycle as a classifier: SmoothQuant variants, `--target cpu,mobile`, a device package."""
    import yaml
    from edge_compress.compress.cli import app
    from typer.testing import CliRunner

    work = tmp_path_factory.mktemp("lm-mobile")
    recipe = work / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"lm": {**SPEC, "int8_weight_only": False, "int4_weight_only": False, "smoothquant_alpha": 0.5}}))
    out = work / "out"
    result = CliRunner().invoke(app, ["run", str(tiny_lm), "--task", "causal-lm", "--out", str(out), "--eval-data", str(LM_TEXT_EVAL),
                                      "--calib-data", str(LM_TEXT_TRAIN), "--recipe", str(recipe), "--max-accuracy-drop", "5",
                                      "--threads", "1", "--target", "cpu,mobile"])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "report.json").read_text())


def test_smoothquant_variants_are_built_beside_the_plain_ones(lm_mobile_run):
    out, report = lm_mobile_run
    by_name = {v["name"]: v for v in report["variants"]}
    assert list(by_name) == ["onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static", "onnx-int8-dynamic-smoothquant",
                             "onnx-int8-static-smoothquant"]
    for name in ("onnx-int8-dynamic-smoothquant", "onnx-int8-static-smoothquant"):
        entry = by_name[name]
        assert entry["error"] is None, entry
        assert entry["settings"]["smoothquant"]["smoothed_inputs"] == 2 * 2  # GPT-2 blocks: ln_1 -> c_attn, ln_2 -> c_fc
        assert abs(entry["metrics"]["perplexity_change_pct"]) < 5 and sum(entry["graph"]["int8_ops"].values()) > 0
    assert not any(p.name.startswith(("tmp", "smoothquant")) for p in out.iterdir())  # the smoothed scratch export is gone


def test_lm_entries_have_the_classifier_schema_gate_and_interleaved_latency(lm_mobile_run, bert_report_keys):
    _, report = lm_mobile_run
    for entry in report["variants"]:
        assert bert_report_keys <= entry.keys(), entry.keys()
        assert set(entry["graph"]) == {"int8_ops", "weight_only_ops", "float_matmul_ops", "float_weight_matmuls"}
        assert entry["latency_ms"]["rounds"] >= 3 and len(entry["latency_ms"]["spread"]) == 2
        assert entry["metrics"]["decode_ms_per_token"] == entry["latency_ms"]["p50"]
        if entry["precision"] == "int8":
            assert set(entry["gate"]) == {"cpu"}
    assert report["tool"]["name"] == "edge-compress" and report["tool"]["duration_s"] > 0
    assert {"load", "variants", "measure", "select", "package", "write"} <= report["durations_s"].keys()


def test_lm_with_target_mobile_writes_a_device_package(lm_mobile_run):
    import onnxruntime as ort

    out, report = lm_mobile_run
    package = report["package"]
    assert report["selected"] is not None and package["variant"] == report["selected"]
    assert report["environment"]["int8_preset"]["name"] == "arm64"  # mobile requested: the ARM preset
    ort_model = out / package["ort_model"]
    assert ort_model.suffix == ".ort" and (out / package["ops_config"]).exists() and "tokenizer.json" in package["sizes"]
    session = ort.InferenceSession(str(ort_model), providers=["CPUExecutionProvider"])
    assert any(i.name.startswith("past_key_values") for i in session.get_inputs())  # the KV-cache decoder, as shipped
    selected = next(v for v in report["variants"] if v["name"] == report["selected"])
    check = package["checks"]["ort_model"]["metrics"]
    assert abs(check["perplexity"] - selected["metrics"]["perplexity"]) < 0.05 * selected["metrics"]["perplexity"]
    assert check["agreement"] > 90 and "mobile" in selected["targets"]


def test_lm_fixed_shape_is_refused_before_any_work(tiny_lm, tmp_path):
    from edge_compress.compress.cli import app
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["run", str(tiny_lm), "--task", "causal-lm", "--out", str(tmp_path / "o"), "--eval-data",
                                      str(LM_TEXT_EVAL), "--fixed-shape", "1,32"])
    assert result.exit_code == 2 and "fixed-shape" in result.output and not (tmp_path / "o").exists()


# ---- LM head options (issue 17): head_bits 4, symmetric, the float-head fallback --------------------------------------

def _nbits_nodes(path: Path) -> dict[str, onnx.NodeProto]:
    return {n.name: n for n in onnx.load(path).graph.node if n.op_type in ("MatMulNBits", "GatherBlockQuantized")}


def _attr(node, name):
    return next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def _next_token_logits(path: Path, tokenizer_dir: Path) -> np.ndarray:
    from edge_compress.export.ort_lm import load_ort_lm
    from transformers import AutoTokenizer

    inputs = AutoTokenizer.from_pretrained(tokenizer_dir)("the customer asked about the order", return_tensors="pt")
    return load_ort_lm(path.parent, 1)(**inputs).logits[0, -1].detach().numpy()


def test_head_bits_4_and_symmetric_weights(lm_run, tmp_path):
    """lm.head_bits: 4 stores the shared table in 4 bits (head MatMulNBits and the embedding gather); lm.symmetric drops
    the body's zero points. The graph still predicts the float model's next token."""
    import shutil

    from edge_compress.compress.quantize.lm import HeadSpec, quantize_weight_only, weight_matmuls
    from edge_compress.export.onnx_io import load_model

    out, report, _ = lm_run
    folder = out / _variant(report, "onnx-fp32")["path"]
    work = shutil.copytree(folder, tmp_path / "int4", ignore=shutil.ignore_patterns("*.onnx", "*.onnx.data"))
    path = quantize_weight_only(folder / "model.onnx", work / "model.onnx", 4, 32, HeadSpec(bits=4, block_size=32), 4,
                                symmetric=True)
    nodes = _nbits_nodes(path)
    body = weight_matmuls(load_model(folder / "model.onnx"))
    heads = [n for n in nodes.values() if n.name not in body]
    assert {n.op_type for n in heads} == {"MatMulNBits", "GatherBlockQuantized"} and all(_attr(n, "bits") == 4 for n in heads)
    for name in body:
        node = next(n for n in nodes.values() if n.op_type == "MatMulNBits" and n.name.startswith(name))
        assert _attr(node, "bits") == 4 and len([i for i in node.input if i]) == 3, node  # A, B, scales: no zero points
    float_logits = _next_token_logits(folder / "model.onnx", folder)
    int4_logits = _next_token_logits(path, work)
    assert int4_logits.argmax() == float_logits.argmax()


def test_head_stays_float_when_hidden_is_not_a_multiple_of_the_block_and_says_so(lm_run, tmp_path, monkeypatch):
    from edge_compress.compress.quantize import lm as quantize
    from edge_compress.compress.quantize.lm import HeadSpec, quantize_weight_only

    warnings: list[str] = []
    monkeypatch.setattr(quantize, "warn", warnings.append)
    out, report, _ = lm_run
    fp32 = out / _variant(report, "onnx-fp32")["path"] / "model.onnx"
    hidden = 32  # make_tiny_lm: n_embd 32
    path = quantize_weight_only(fp32, tmp_path / "model.onnx", 8, 64, HeadSpec(bits=8, block_size=64))
    ops = Counter(n.op_type for n in onnx.load(path).graph.node)
    assert ops["GatherBlockQuantized"] == 0 and ops["Gather"] >= 1  # the table is still a float Gather
    assert any(i.dims[1:] == [hidden] and i.data_type == onnx.TensorProto.FLOAT and i.dims[0] > 100
               for i in onnx.load(path).graph.initializer)
    assert len(warnings) == 1 and f"hidden size {hidden}" in warnings[0] and "64" in warnings[0]


def test_generate_sample_uses_sampling_and_the_temperature(lm_run, monkeypatch, capsys):
    """`compress generate --sample --temperature 0.5` samples (do_sample, the temperature) instead of greedy decoding."""
    import edge_compress.compress.commands.generate as generate_module
    from edge_compress.compress.cli import app
    from typer.testing import CliRunner

    out, _, _ = lm_run
    seen = []
    real = generate_module.load_ort_lm

    def spy_load(*args, **kwargs):
        model = real(*args, **kwargs)
        generate = model.generate

        def spy_generate(*a, **k):
            seen.append({k2: k.get(k2) for k2 in ("do_sample", "temperature", "num_beams")})
            return generate(*a, **k)
        model.generate = spy_generate
        return model

    monkeypatch.setattr(generate_module, "load_ort_lm", spy_load)
    result = CliRunner().invoke(app, ["generate", str(out), "she ordered the", "--sample", "--temperature", "0.5",
                                      "--max-new-tokens", "4", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert seen == [{"do_sample": True, "temperature": 0.5, "num_beams": None}]


def test_onnx_loop_samples_reproducibly_and_top_k_1_is_greedy(lm_run, tiny_lm):
    """The ONNX Runtime loop's sampling: a seed fixes the draw, top_k=1 leaves only the greedy token, and a left-padded
    batch generates each prompt's own greedy tokens (positions from the mask)."""
    from edge_compress.export.ort_lm import load_ort_lm
    from transformers import AutoTokenizer

    out, report, _ = lm_run
    model = load_ort_lm(out / _variant(report, "onnx-fp32")["path"], 1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    ids = tokenizer("she ordered the", return_tensors="pt")["input_ids"]
    greedy = model.generate(ids, max_new_tokens=6, min_new_tokens=6)
    assert torch.equal(model.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=True, top_k=1, seed=3), greedy)
    first = model.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=True, temperature=1.5, seed=7)
    assert torch.equal(model.generate(ids, max_new_tokens=6, min_new_tokens=6, do_sample=True, temperature=1.5, seed=7), first)
    other = tokenizer("the customer asked about the order", return_tensors="pt")["input_ids"]
    tokenizer.padding_side = "left"
    tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer.pad({"input_ids": [ids[0].tolist(), other[0].tolist()]}, padding=True, return_tensors="pt")
    together = model.generate(batch["input_ids"], batch["attention_mask"], max_new_tokens=6, min_new_tokens=6, pad_token_id=0)
    alone = model.generate(other, max_new_tokens=6, min_new_tokens=6)
    assert torch.equal(together[0, -6:], greedy[0, -6:]) and torch.equal(together[1, -6:], alone[0, -6:])


def test_a_fused_tied_head_is_unfused_back_to_the_shared_table(lm_run):
    """Large tables are not constant-folded, so ORT's fusions write the tied head as FusedMatMul(hidden, table,
    transB=1) (Gemma 3 270M); unfused, it is Transpose + MatMul again: found as tied, and the same logits."""
    import onnxruntime as ort
    from edge_compress.compress.tasks.causal_lm.calibration import calibration_feeds
    from edge_compress.export.tied import find_tied_head, unfuse_tied_head

    out, report, _ = lm_run
    path = out / _variant(report, "onnx-fp32")["path"] / "model.onnx"
    model = onnx.load(path)
    tied = find_tied_head(model)
    fused = onnx.helper.make_node("FusedMatMul", [tied.matmul.input[0], tied.table], list(tied.matmul.output),
                                  domain="com.microsoft", name="node_FusedMatMul_1", transB=1, alpha=1.0)
    nodes = [fused if n.name == tied.matmul.name else n for n in model.graph.node if n.name != tied.transpose.name]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.opset_import.append(onnx.helper.make_opsetid("com.microsoft", 1))
    assert find_tied_head(model) is None
    feed = calibration_feeds(path, __import__("transformers").AutoTokenizer.from_pretrained(path.parent), ["the order was late"], 8, 1, 1)[0]
    expected = ort.InferenceSession(model.SerializeToString()).run(["logits"], feed)[0]
    assert unfuse_tied_head(model) == 1 and find_tied_head(model) is not None
    np.testing.assert_allclose(ort.InferenceSession(model.SerializeToString()).run(["logits"], feed)[0], expected, atol=1e-5)
