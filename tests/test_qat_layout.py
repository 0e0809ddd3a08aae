"""README (QAT): "the QAT graph is the static-PTQ graph with trained weights and ranges: same layout, same fusions,
same kernels", and "the fake-quantized PyTorch model vs the int8 ONNX graph (max logit difference, ~1e-8 on the test
models)". One `compress run` with static PTQ and QAT (labels weighted in), then both runtime graphs op for op."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
from edge_compress.compress.cli import app
from typer.testing import CliRunner

GAP_BOUND = 1e-4  # README: ~1e-8 on the test models; anything near 1e-4 means training and the graph disagree


def runtime_ops(model: Path, tmp: Path) -> list[str]:
    """The op sequence of the graph ONNX Runtime executes after its fusions, read with onnxruntime directly."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(tmp / f"{model.parent.name}.runtime.onnx")
    options.intra_op_num_threads = 1
    ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(options.optimized_model_filepath, load_external_data=False).graph.node]


@pytest.fixture(scope="module")
def qat_run(tiny_bert, data_dir, tmp_path_factory):
    from edge_compress.compress import distill

    seen = {}
    real = distill.distill

    def spy(student, teacher, rows, config, tokenizer):
        seen.update(label_weight=config.label_weight, labelled=all("labels" in r for r in rows), rows=len(rows))
        return real(student, teacher, rows, config, tokenizer)

    tmp = tmp_path_factory.mktemp("qat_layout")
    recipe = tmp / "r.yaml"
    recipe.write_text("validate: {latency_samples: 5, warmup: 0, batch_size: 8}\noptimize: {enabled: false}\n"
                      "quantize: {dynamic: {enabled: false}, static: {num_samples: 16, calibration_method: percentile}}\n"
                      "qat: {max_steps: 2, batch_size: 8, calib_batches: 2, label_weight: 0.5}\n")
    out = tmp / "out"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(distill, "distill", spy)
        result = CliRunner().invoke(app, ["run", str(tiny_bert), "--out", str(out), "--eval-data", str(data_dir / "eval.csv"),
                                          "--recipe", str(recipe), "--threads", "1"])
    assert result.exit_code == 0, result.output
    return out, json.loads((out / "report.json").read_text()), seen, tmp


def test_qat_and_static_ptq_run_the_same_graph_op_for_op(qat_run):
    out, report, _, tmp = qat_run
    by_name = {v["name"]: v for v in report["variants"]}
    static, qat = (runtime_ops(out / by_name[n]["path"] / "model.onnx", tmp) for n in ("onnx-int8-static", "onnx-int8-qat"))
    assert qat == static  # same ops in the same order: same layout and fusions
    assert Counter(static)["MatMulIntegerToFloat"] > 0
    assert by_name["onnx-int8-qat"]["graph"] == by_name["onnx-int8-static"]["graph"]


def test_qat_fake_quant_gap_is_bounded(qat_run):
    _, report, _, _ = qat_run
    qat = next(v for v in report["variants"] if v["name"] == "onnx-int8-qat")
    gap = qat["settings"]["fake_quant_vs_onnx_max_logit_diff"]
    assert 0 <= gap < GAP_BOUND, gap


def test_qat_label_weight_reaches_the_training_loss(qat_run):
    """qat.label_weight > 0 with a labelled train file: the distillation gets the weight and every row its label."""
    _, report, seen, _ = qat_run
    assert seen == {"label_weight": 0.5, "labelled": True, "rows": 80}  # every train.csv row (conftest: 80 labelled texts)
    qat = next(v for v in report["variants"] if v["name"] == "onnx-int8-qat")
    assert qat["settings"]["qat"]["label_weight"] == 0.5
