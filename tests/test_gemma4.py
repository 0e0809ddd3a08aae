"""A transformers-5-only architecture through the whole causal-LM lifecycle: a tiny random Gemma 4 text model
(sliding + full attention layers with different head sizes, per-layer input embeddings, tied LM head).

`compress run --task causal-lm` with int8 dynamic and int4 weight-only variants writes its report; the fp32 export
generates PyTorch's greedy tokens, through our ONNX Runtime loop and through transformers' ExportedModel.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from edge_compress.calib_data import LM_TEXT_EVAL, LM_TEXT_TRAIN
from test_causal_lm import SPEC, _tokenizer
from transformers import Gemma4ForCausalLM, Gemma4TextConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matrices: one thread is fastest


def make_gemma4(folder: Path) -> Path:
    tokenizer = _tokenizer(LM_TEXT_TRAIN.read_text())
    config = Gemma4TextConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=8, global_head_dim=16,
                              max_position_embeddings=128, sliding_window=4,
                              layer_types=["sliding_attention", "full_attention"], vocab_size_per_layer_input=len(tokenizer),
                              hidden_size_per_layer_input=8, initializer_range=0.2, pad_token_id=0, bos_token_id=0,
                              eos_token_id=0)
    torch.manual_seed(0)
    Gemma4ForCausalLM(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def gemma4_run(tmp_path_factory):
    import yaml
    from edge_compress.compress.cli import app
    from typer.testing import CliRunner

    work = tmp_path_factory.mktemp("gemma4")
    checkpoint = make_gemma4(work / "ckpt")
    recipe = work / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"lm": {**SPEC, "int8_static": False, "int8_weight_only": False}}))
    out = work / "out"
    result = CliRunner().invoke(app, ["run", str(checkpoint), "--task", "causal-lm", "--out", str(out), "--eval-data",
                                      str(LM_TEXT_EVAL), "--recipe", str(recipe), "--max-accuracy-drop", "50", "--threads", "1"])
    assert result.exit_code in (0, 3), result.output
    return checkpoint, out, json.loads((out / "report.json").read_text())


def test_gemma4_runs_the_causal_lm_lifecycle(gemma4_run):
    _, out, report = gemma4_run
    assert report["task"] == "causal-lm" and (out / "report.html").exists()
    names = [v["name"] for v in report["variants"]]
    assert names == ["onnx-fp32", "onnx-int8-dynamic", "onnx-int4-weight-only"]
    for entry in report["variants"]:
        assert entry["error"] is None, entry
    fp32 = report["variants"][0]["metrics"]
    assert fp32["greedy_exact_match"] == 100 and fp32["agreement"] == 100
    assert sum(report["variants"][1]["graph"]["int8_ops"].values()) > 0
    assert report["variants"][2]["graph"]["weight_only_ops"]
    from edge_compress.export.runtime import graph_op_counts

    ops = graph_op_counts(out / report["variants"][2]["path"] / "model.onnx")
    assert ops.get("GatherBlockQuantized") == 1  # the tied embedding / LM head: one quantized table


def test_gemma4_fp32_folder_generates_like_pytorch_in_both_runtimes(gemma4_run):
    from edge_compress.export.ort_lm import exported_generate, load_ort_lm
    from transformers.exporters import ExportedModel

    checkpoint, out, report = gemma4_run
    folder = out / report["variants"][0]["path"]
    model = Gemma4ForCausalLM.from_pretrained(checkpoint).eval()
    ids = torch.tensor([[5, 9, 17, 3, 40, 11, 7]])  # longer than the sliding window: the cropped cache is fed back
    expected = model.generate(ids, max_new_tokens=10, do_sample=False, pad_token_id=0)
    assert expected.shape[1] > ids.shape[1] + 4  # past the window
    assert torch.equal(load_ort_lm(folder, 1).generate(ids, max_new_tokens=10), expected)
    tokens = exported_generate(ExportedModel.from_pretrained(folder), ids, 10, model.generation_config.eos_token_id)
    assert torch.equal(tokens, expected)


def test_static_int8_runs_every_weight_matmul_in_int8_on_a_fused_graph(gemma4_run, tmp_path):
    from edge_compress.compress.quantize.lm import HeadSpec, quantize_static_lm, weight_matmuls
    from edge_compress.compress.quantize.presets import preset_for
    from edge_compress.compress.run.measure import runtime_graph
    from edge_compress.compress.tasks.causal_lm.calibration import calibration_feeds
    from edge_compress.export.hardware import cpu_info
    from edge_compress.export.onnx_io import load_model

    checkpoint, out, report = gemma4_run
    fp32 = out / report["variants"][0]["path"] / "model.onnx"
    tokenizer = __import__("transformers").AutoTokenizer.from_pretrained(checkpoint)
    feeds = calibration_feeds(fp32, tokenizer, LM_TEXT_TRAIN.read_text().splitlines()[:4], 32, 2, 1)
    static = quantize_static_lm(fp32, tmp_path / "model.onnx", preset_for(cpu_info()), HeadSpec(8, 32, None), feeds)
    graph = runtime_graph(static)
    body = len(weight_matmuls(load_model(fp32)))
    assert sum(n for op, n in graph["int8_ops"].items() if op in ("QLinearMatMul", "MatMulIntegerToFloat")) == body, graph
