"""Quantization-aware training: numerics of the fake quantization vs the exported int8 graph, learning, errors."""
import copy
import json

import numpy as np
import pytest
import torch
from conftest import make_texts
from edge_compress.compress.cli import app
from edge_compress.compress.errors import CompressError
from edge_compress.compress.qat import QATConfig, insert_fake_quant, quantization_aware_train
from edge_compress.compress.qat.build import build_qat_onnx, fake_quant_gap
from edge_compress.compress.qat.fake_quant import ActivationQuantizer, fake_quant_weight
from edge_compress.compress.qat.modules import QuantLinear, activation_quantizers
from edge_compress.compress.quantize.presets import PRESETS, preset_for
from edge_compress.compress.run.measure import onnx_runner, runtime_graph, torch_runner
from edge_compress.export.hardware import cpu_info
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from typer.testing import CliRunner


def _batches(tokenizer, n=48, size=16, seed=0):
    texts = [t for t, _ in make_texts(n, seed=seed)]
    return [dict(tokenizer(texts[i:i + size], padding=True, return_tensors="pt")) for i in range(0, n, size)]


@pytest.fixture(scope="module")
def bert(tiny_bert):
    return AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval(), AutoTokenizer.from_pretrained(tiny_bert)


def _export(tokenizer):
    """What the pipeline passes build_qat_onnx: the task's own export."""
    from edge_compress.compress.tasks.text_classification.task import TextClassification

    return lambda model, folder: TextClassification().export(model, tokenizer, folder, None)


@pytest.fixture(scope="module")
def exported(bert, tmp_path_factory):
    """Built with this CPU's preset, as the pipeline does: full-range weights on a CPU without VNNI saturate
    ONNX Runtime's 16-bit u8s8 sums, so the graph would differ from training there by design (seen on CI)."""
    model, tokenizer = bert
    preset = preset_for(cpu_info())
    qat = insert_fake_quant(copy.deepcopy(model), _batches(tokenizer), "uint8", preset.reduce_range, 99.99).eval()
    feeds = [{k: v.numpy() for k, v in b.items()} for b in _batches(tokenizer, seed=3)]
    path = build_qat_onnx(qat, tmp_path_factory.mktemp("qat") / "model.onnx", _export(tokenizer), preset, feeds[:1])
    return model, qat, path, feeds


def test_fake_quant_matches_the_int8_onnx_graph(exported):
    model, qat, path, feeds = exported
    gap = fake_quant_gap(qat, path, feeds, threads=1)
    float_gap = max(np.abs(torch_runner(model)(f) - onnx_runner(path, 1)(f)).max() for f in feeds)
    assert gap < 1e-4, gap                      # the graph computes what training saw ...
    assert float_gap > 50 * max(gap, 1e-7)      # ... and that is not the float model (quantization is real)


def test_reduced_range_preset_matches_too(bert, tmp_path):
    """CPUs without VNNI get 7-bit weights (the avx2 preset): training must see the same grid as the graph."""
    model, tokenizer = bert
    qat = insert_fake_quant(copy.deepcopy(model), _batches(tokenizer), "uint8", True, 99.99).eval()
    feeds = [{k: v.numpy() for k, v in b.items()} for b in _batches(tokenizer, seed=4)]
    path = build_qat_onnx(qat, tmp_path / "model.onnx", _export(tokenizer), PRESETS["avx2"], feeds[:1])
    assert fake_quant_gap(qat, path, feeds, threads=1) < 1e-4


def test_exported_graph_runs_integer_kernels_only(exported):
    graph = runtime_graph(exported[2])
    assert graph["int8_ops"].get("MatMulIntegerToFloat", 0) == 12, graph  # 2 layers x (q, k, v, out, ffn in, ffn out)
    assert graph["float_weight_matmuls"] == 0, graph


def test_query_key_value_share_one_input_range(exported):
    qat = exported[1]
    attention = qat.bert.encoder.layer[0].attention.self
    assert attention.query.input_quantizer is attention.key.input_quantizer is attention.value.input_quantizer
    assert len(activation_quantizers(qat)) == 8  # per layer: qkv, attention output, FFN in, FFN out
    assert not isinstance(qat.classifier, QuantLinear)  # 2-D input: exported as Gemm, kept float like PTQ


def test_weight_fake_quant_is_symmetric_per_channel():
    w = torch.tensor([[1.0, -0.5, 0.25], [0.01, 0.02, -0.04]])
    q = fake_quant_weight(w, reduce_range=False)
    assert torch.allclose(q.abs().amax(1), w.abs().amax(1))   # each row's extreme is exact (scale = max|w| / 127)
    assert torch.allclose(q[1], torch.round(w[1] / (0.04 / 127)) * (0.04 / 127))


def test_activation_quantizer_learns_and_passes_gradients():
    quantizer = ActivationQuantizer()
    quantizer(torch.linspace(-1, 3, 1000))
    quantizer.start()
    scale, zero_point = quantizer.onnx_params()
    assert abs(scale - 4 / 255) < 1e-3 and zero_point == 64
    x = torch.linspace(-2, 4, 100, requires_grad=True)
    quantizer(x).pow(2).sum().backward()
    assert quantizer.scale.grad is not None and quantizer.scale.grad != 0
    assert x.grad[50] != 0 and x.grad[0] == 0   # inside the range: straight through; clipped outside


def test_calibration_ignores_padding_positions():
    """Left-padded decoders give pad positions huge activations; the initial range must come from real tokens."""
    x = torch.linspace(-1, 3, 2 * 500).reshape(2, 500, 1).repeat(1, 1, 4)
    keep = torch.ones(2, 500, dtype=torch.bool)
    keep[:, :100] = False
    x[:, :100] = 800.0
    quantizer = ActivationQuantizer()
    quantizer.keep = keep
    quantizer(x)
    quantizer.start()
    scale, _ = quantizer.onnx_params()
    assert scale < 5 / 255, scale  # the real values span ~4; counting the pads would give ~800 / 255


def test_training_a_few_steps_moves_scales_and_weights(bert):
    model, tokenizer = bert
    texts, _labels = zip(*make_texts(32, seed=5))
    before = model.bert.encoder.layer[0].output.dense.weight.detach().clone()
    config = QATConfig(max_steps=4, batch_size=8, calib_batches=2, learning_rate=1e-3)
    qat, moved = quantization_aware_train(model, tokenizer, list(texts), [i % 3 for i in range(32)], config)
    assert moved["scales"] == 8 and moved["mean_relative_change"] > 0
    assert not torch.equal(qat.bert.encoder.layer[0].output.dense.linear.weight, before)
    assert torch.equal(model.bert.encoder.layer[0].output.dense.weight, before)   # the teacher is untouched ...
    assert all(p.requires_grad for p in model.parameters())                      # ... and still trainable


class Scaler(torch.nn.Module):
    """A layer with a matrix weight that is neither Linear, Conv1D nor Embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.eye(4))


def test_unsupported_layers_are_named(tiny_bert):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert)
    model.bert.scaler = Scaler()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    with pytest.raises(CompressError, match="Scaler.*only nn.Linear, GPT-2's Conv1D and nn.Embedding"):
        quantization_aware_train(model, tokenizer, ["the film was good"] * 4, None, QATConfig(max_steps=1))


def _run_with_qat(ckpt, data_dir, tmp_path, recipe_text: str) -> tuple[dict, str]:
    """`compress run` with a short qat: stage plus `recipe_text`; the variants by name and the console output."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("validate: {latency_samples: 5, warmup: 0, batch_size: 8}\nqat: {max_steps: 2, batch_size: 8, calib_batches: 2}\n"
                      + recipe_text)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(ckpt), "--out", str(out), "--eval-data", str(data_dir / "eval.csv"),
                                      "--calib-data", str(data_dir / "train.csv"), "--recipe", str(recipe), "--threads", "1"])
    assert result.exit_code == 0, result.output
    return {v["name"]: v for v in json.loads((out / "report.json").read_text())["variants"]}, result.output


def test_gpt2_conv1d_layers_are_quantized_by_static_ptq_and_qat(tiny_gpt2, data_dir, tmp_path):
    """GPT-2's Conv1D exports as Gemm, which ORT's int8 quantizers skip: exported as Linear, every projection
    (c_attn, c_proj, c_fc, mlp c_proj per layer) must run an integer kernel, and QAT must train them."""
    by_name, _ = _run_with_qat(tiny_gpt2, data_dir, tmp_path, "quantize: {static: {num_samples: 8}}\noptimize: {enabled: false}\n")
    assert all(v["error"] is None for v in by_name.values()), by_name
    assert by_name["onnx-fp32"]["graph"]["float_weight_matmuls"] == 2 * 4 + 1  # + the score head
    from expected_ops import expected_int8_ops

    for name in ("onnx-int8-dynamic", "onnx-int8-static", "onnx-int8-qat"):
        graph = by_name[name]["graph"]
        assert graph["float_weight_matmuls"] == 0 and graph["int8_ops"] == expected_int8_ops(tiny_gpt2, name), (name, graph)
    assert by_name["onnx-int8-qat"]["settings"]["fake_quant_vs_onnx_max_logit_diff"] < 1e-4


def test_qat_recipe_is_refused_for_causal_lm():
    from edge_compress.compress.recipe import QATSpec, Recipe

    with pytest.raises(CompressError, match="QAT is implemented for text classifiers"):
        Recipe(task="causal-lm", qat=QATSpec()).check()


def test_qat_command_writes_an_int8_model_exported_model_loads(tiny_bert, data_dir, tmp_path):
    from transformers.exporters import ExportedModel

    out = tmp_path / "qat"
    result = CliRunner().invoke(app, ["qat", str(tiny_bert), "--out", str(out), "--data", str(data_dir / "train.csv"),
                                      "--max-steps", "2", "--batch-size", "8"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "qat_report.json").read_text())
    assert report["runtime_graph"]["float_weight_matmuls"] == 0 and report["fake_quant_vs_onnx_max_logit_diff"] < 1e-4
    tokenizer = AutoTokenizer.from_pretrained(out)
    logits = ExportedModel.from_pretrained(out)(**tokenizer(["a good film"], return_tensors="pt")).logits
    assert logits.shape == (1, 3)


def test_prune_distill_qat_compose_in_one_run(tiny_bert, data_dir, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("validate: {latency_samples: 5, warmup: 0, batch_size: 8}\n"
                      "quantize: {dynamic: {enabled: false}, static: {num_samples: 8}}\noptimize: {enabled: false}\n"
                      "prune: {head_fraction: 0.5, num_calib_batches: 2, batch_size: 8}\ndistill: {max_steps: 2, batch_size: 8}\n"
                      "qat: {max_steps: 2, batch_size: 8, calib_batches: 2}\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(tiny_bert), "--out", str(out), "--eval-data", str(data_dir / "eval.csv"),
                                      "--recipe", str(recipe), "--threads", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    assert set(by_name) == {"onnx-fp32", "onnx-int8-static", "onnx-int8-qat", "pruned-onnx-fp32", "pruned-onnx-int8-static",
                            "pruned-onnx-int8-qat"}, by_name
    for name in ("onnx-int8-qat", "pruned-onnx-int8-qat"):
        entry = by_name[name]
        assert entry["error"] is None and entry["graph"]["float_weight_matmuls"] == 0
        assert entry["settings"]["fake_quant_vs_onnx_max_logit_diff"] < 1e-4
        assert entry["settings"]["learned_scales"]["mean_relative_change"] > 0
    assert "activation ranges calibrated then learned" in (out / "report.md").read_text()


def test_gemma3_classifier_qat_and_smoothquant(data_dir, tmp_path):
    """A decoder classifier whose embedding is an nn.Embedding subclass (Gemma multiplies by sqrt(hidden)): the QAT
    model must run that subclass's forward, or the fake-quantized model and the int8 graph disagree."""
    from conftest import make_gemma3

    ckpt = make_gemma3(tmp_path / "gemma3")
    by_name, output = _run_with_qat(ckpt, data_dir, tmp_path, "quantize: {static: {num_samples: 8, smoothquant_alpha: 0.5}}\n")
    assert "no fusions for 'gemma3_text'" in output
    assert set(by_name) == {"onnx-fp32", "onnx-int8-dynamic", "onnx-int8-static", "onnx-int8-static-smoothquant", "onnx-int8-qat"}
    assert all(v["error"] is None for v in by_name.values()), by_name
    assert by_name["onnx-fp32"]["metrics"]["max_abs_logit_diff"] < 1e-4
    qat = by_name["onnx-int8-qat"]
    assert qat["settings"]["fake_quant_vs_onnx_max_logit_diff"] < 1e-4 and qat["graph"]["float_weight_matmuls"] == 0
    assert qat["graph"]["int8_ops"]["MatMulIntegerToFloat"] == 2 * 7 + 1  # q k v o gate up down per layer, and the score head
    smoothed = by_name["onnx-int8-static-smoothquant"]  # the same int8 graph, built from a smoothed export
    assert smoothed["graph"]["int8_ops"] == by_name["onnx-int8-static"]["graph"]["int8_ops"]
    assert smoothed["settings"]["smoothquant"]["smoothed_inputs"] == 2 * 3
