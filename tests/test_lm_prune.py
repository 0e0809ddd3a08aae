"""Structured pruning of a causal LM in `compress run`: a `pruned-` line of variants from a tiny trained Llama, scored
by perplexity like the float line, packaged for a device with a genai_config.json that onnxruntime-genai generates with.

The Llama (hidden 32, 4 query heads in 2 KV groups of head size 8, gated FFN of 64, 2 layers) is trained for a few
seconds on the project's LM text, so perplexity and greedy generation mean something. One module-scoped run:
`prune: {head_fraction: 0.25, ffn_fraction: 0.3}` (one KV group per layer survives: the KV cache keeps one shape) with
int8 dynamic and int4 weight-only variants and `--target cpu,mobile`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from edge_compress.calib_data import LM_TEXT_EVAL, LM_TEXT_TRAIN
from test_causal_lm import SPEC, _tokenizer, train_on_lm_text
from test_genai import ort_greedy
from transformers import LlamaConfig, LlamaForCausalLM

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices: one thread is fastest
LINE = ["onnx-fp32", "onnx-int8-dynamic", "onnx-int4-weight-only"]
PRUNE = {"head_fraction": 0.25, "ffn_fraction": 0.3, "batch_size": 2, "num_calib_batches": 4}


def make_tiny_llama(folder: Path, steps: int = 120) -> Path:
    """A 2-layer GQA Llama trained on calib_data/lm_text/train.txt for `steps` steps; model + tokenizer saved."""
    torch.manual_seed(0)
    text = LM_TEXT_TRAIN.read_text()
    tokenizer = _tokenizer(text)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=8, max_position_embeddings=128,
                         bos_token_id=0, eos_token_id=0, pad_token_id=0)
    model = train_on_lm_text(LlamaForCausalLM(config), tokenizer, text, steps)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _run(args: list[str]):
    from edge_compress.compress.cli import app
    from typer.testing import CliRunner

    return CliRunner().invoke(app, args)


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory) -> Path:
    return make_tiny_llama(tmp_path_factory.mktemp("llama") / "ckpt")


@pytest.fixture(scope="module")
def pruned_run(tiny_llama, tmp_path_factory):
    import yaml

    work = tmp_path_factory.mktemp("lm-prune")
    recipe = work / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"lm": {**SPEC, "int8_static": False, "int8_weight_only": False}, "prune": PRUNE}))
    out = work / "out"
    result = _run(["run", str(tiny_llama), "--task", "causal-lm", "--out", str(out), "--eval-data", str(LM_TEXT_EVAL),
                   "--calib-data", str(LM_TEXT_TRAIN), "--recipe", str(recipe), "--max-accuracy-drop", "50",
                   "--threads", "1", "--target", "cpu,mobile"])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "report.json").read_text())


def _entry(report: dict, name: str) -> dict:
    return next(v for v in report["variants"] if v["name"] == name)


def _kv_heads(path: Path) -> set[int]:
    graph = onnx.load(str(path), load_external_data=False).graph
    return {i.type.tensor_type.shape.dim[1].dim_value for i in graph.input if i.name.startswith("past_key_values")}


def test_the_pruned_line_is_built_scored_and_smaller(pruned_run):
    out, report = pruned_run
    assert [v["name"] for v in report["variants"]] == LINE + ["pruned-" + n for n in LINE]
    for entry in report["variants"]:
        assert entry["error"] is None, entry
        assert np.isfinite(entry["metrics"]["perplexity"]) and "perplexity_change_pct" in entry["metrics"]
    pruning = report["pruning"]
    assert pruning["heads_per_layer"] == [1, 1]  # KV groups: one per layer kept, the same in every layer
    assert sum(pruning["neurons_per_layer"]) == round(0.7 * 128) and pruning["source"] == str(LM_TEXT_TRAIN)
    assert pruning["params_after"] < pruning["params_before"]
    for name in LINE:  # physically smaller: parameters and bytes of every pruned variant, and the cache it carries
        full, pruned = _entry(report, name), _entry(report, "pruned-" + name)
        assert pruned["params"] < full["params"] and pruned["size_bytes"] < full["size_bytes"], (name, pruned, full)
        assert pruned["settings"]["pruning"]["heads_per_layer"] == [1, 1]
        assert _kv_heads(out / pruned["path"] / "model.onnx") == {1} and _kv_heads(out / full["path"] / "model.onnx") == {2}
    assert sum(_entry(report, "pruned-onnx-int8-dynamic")["graph"]["int8_ops"].values()) > 0
    assert _entry(report, "pruned-onnx-int4-weight-only")["graph"]["weight_only_ops"]


def test_a_pruned_variant_folder_records_its_shapes_and_generates(pruned_run):
    from edge_compress.export.ort_lm import exported_generate, load_ort_lm
    from transformers.exporters import ExportedModel

    out, report = pruned_run
    folder = out / _entry(report, "pruned-onnx-fp32")["path"]
    config = json.loads((folder / "config.json").read_text())
    assert (config["num_key_value_heads"], config["num_attention_heads"]) == (1, 2)  # uniform heads: expressible
    assert sum(config["edge_compress"]["ffn_sizes"]) == round(0.7 * 128)  # per-layer FFN widths, for load_pruned
    ids = torch.tensor([[5, 9, 17, 3, 40, 11, 7]])
    ours = load_ort_lm(folder, 1).generate(ids, max_new_tokens=8)
    assert torch.equal(exported_generate(ExportedModel.from_pretrained(folder), ids, 8, 0)[:, :ours.shape[1]], ours)


def test_the_device_package_generates_in_onnxruntime_genai(pruned_run):
    og = pytest.importorskip("onnxruntime_genai", reason="pip install -e '.[genai]'")
    import onnxruntime as ort

    out, report = pruned_run
    package = out / "package"
    section = report["package"]
    assert section["runtime_files"] == {"onnxruntime-genai": "genai_config.json"}
    assert section["runtime_checks"]["onnxruntime_genai"] == {"prompts": 2, "new_tokens": SPEC["new_tokens"], "same_greedy_tokens": 2}
    config = json.loads((package / "genai_config.json").read_text())
    ort_model = out / section["ort_model"]
    assert config["model"]["decoder"]["filename"] == ort_model.name and not list(package.glob("*.onnx"))
    heads = 1 if report["selected"].startswith("pruned-") else 2
    assert config["model"]["decoder"]["num_key_value_heads"] == heads

    prompt = [5, 9, 17, 3, 40, 11]
    model = og.Model(str(package))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=20, do_sample=False)
    generator = og.Generator(model, params)
    generator.append_tokens(np.array([prompt], dtype=np.int32))
    while not generator.is_done():
        generator.generate_next_token()
    genai = [int(t) for t in generator.get_sequence(0)]
    assert len(genai) > len(prompt)
    assert genai == ort_greedy(ort.InferenceSession(str(ort_model), providers=["CPUExecutionProvider"]), prompt, 20,
                                config["model"]["eos_token_id"])


def test_gemma4_pruning_is_refused_before_any_work_with_the_reason(tmp_path):
    from test_gemma4 import make_gemma4

    checkpoint = make_gemma4(tmp_path / "ckpt")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({"lm": SPEC, "prune": PRUNE}))
    result = _run(["run", str(checkpoint), "--task", "causal-lm", "--out", str(tmp_path / "o"), "--eval-data",
                   str(LM_TEXT_EVAL), "--recipe", str(recipe)])
    assert result.exit_code == 2 and "global_head_dim" in result.output and not (tmp_path / "o").exists()


def test_compress_prune_writes_a_causal_lm_checkpoint_that_reloads_and_exports(tiny_llama, tmp_path):
    """`compress prune --task causal-lm` (with distillation): a checkpoint whose per-layer FFN widths the config cannot
    hold reloads with load_pruned (and so in `compress run`), and its export generates the reloaded model's greedy
    tokens."""
    from edge_compress.compress.prune import load_pruned
    from edge_compress.compress.tasks.causal_lm.export import export_causal_lm
    from edge_compress.export.ort_lm import load_ort_lm
    from transformers import AutoTokenizer

    out = tmp_path / "pruned"
    result = _run(["prune", str(tiny_llama), "--task", "causal-lm", "--out", str(out), "--calib-data", str(LM_TEXT_TRAIN),
                   "--heads", "0.25", "--ffn", "0.3", "--calib-batches", "2", "--distill-epochs", "0.2"])
    assert result.exit_code == 0, result.output
    section = json.loads((out / "prune_report.json").read_text())
    assert section["heads_per_layer"] == [1, 1] and len(set(section["neurons_per_layer"])) == 2  # widths differ
    assert section["distilled"]  # token-level KL from the float model ran on the same text
    model = load_pruned(out)
    assert [layer.mlp.down_proj.in_features for layer in model.model.layers] == section["neurons_per_layer"]
    assert sum(p.numel() for p in model.parameters()) == section["params_after"] < section["params_before"]
    folder = tmp_path / "onnx"
    export_causal_lm(model, AutoTokenizer.from_pretrained(out), folder)
    model.config.save_pretrained(folder)
    ids = torch.tensor([[5, 9, 17, 3, 40, 11, 7]])
    with torch.no_grad():
        expected = model.generate(ids, max_new_tokens=8, min_new_tokens=8, do_sample=False, pad_token_id=0)
    assert torch.equal(load_ort_lm(folder, 1).generate(ids, max_new_tokens=8, min_new_tokens=8), expected)


def test_compress_prune_refuses_a_task_without_pruning(tiny_llama, tmp_path):
    result = _run(["prune", str(tiny_llama), "--task", "question-answering", "--out", str(tmp_path / "o"),
                   "--calib-data", str(LM_TEXT_TRAIN), "--ffn", "0.3"])
    assert result.exit_code == 2 and "not implemented for question-answering" in result.output
    assert not (tmp_path / "o").exists()


def test_pruning_windows_cut_the_stream_with_bos_first_and_no_padding():
    from edge_compress.compress.errors import CompressError
    from edge_compress.compress.tasks.causal_lm.calibration import prune_windows
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, **{f"w{i}": i for i in range(2, 50)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", pad_token="<pad>")
    texts = [" ".join(f"w{2 + (7 * i + j) % 48}" for j in range(10)) for i in range(6)]  # 60 text tokens
    batches = prune_windows(tokenizer, texts, context=9, batch_size=2, limit=3)
    assert [b["input_ids"].shape for b in batches] == [(2, 9)] * 3  # 6 windows of 8 text tokens; the rest unused
    stream = [int(t) for b in batches for row in b["input_ids"] for t in row[1:]]
    assert all(int(row[0]) == 1 for b in batches for row in b["input_ids"])  # BOS first, as in the perplexity windows
    assert stream == tokenizer(" ".join(texts), add_special_tokens=False)["input_ids"][:48]
    assert all(bool(b["attention_mask"].all()) for b in batches)
    with pytest.raises(CompressError, match="fewer than one window"):
        prune_windows(tokenizer, ["w2 w3"], context=9, batch_size=2, limit=3)
