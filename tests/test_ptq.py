"""Static int8 calibration in strides: the same ranges as one pass, with memory bounded by the stride.

ORT's calibrators keep every calibrated tensor of a pass in memory; `quantize_int8_static` runs them
`CALIBRATION_STRIDE` inputs at a time (ORT's `CalibStridedMinMax`).  MinMax ranges merge exactly, so a strided run
must give the very scales a single pass gives; a reader that ignored the strides would calibrate on the first
stride only, or on everything every time, and fail this.
"""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from edge_compress.compress.quantize.lm import HeadSpec, quantize_static_lm
from edge_compress.compress.quantize.presets import PRESETS
from edge_compress.compress.quantize.ptq import _stride, quantize_int8_static
from onnx import TensorProto, helper, numpy_helper


def _matmul_graph(path):
    weight = numpy_helper.from_array(np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32), "weight")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "weight"], ["y"], name="linear")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _activation_scales(path) -> dict[str, float]:
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {n.input[0]: float(inits[n.input[1]]) for n in model.graph.node
            if n.op_type == "QuantizeLinear" and n.input[0] == "x"}


def test_strides_divide_the_count():
    assert _stride(10, 16) is None
    assert _stride(64, 16) == 16
    assert _stride(60, 16) == 15
    assert _stride(17, 16) == 1  # a prime count: one input per pass, still bounded


@pytest.mark.parametrize("method", ["minmax", "percentile"])
def test_strided_calibration_sees_every_input(tmp_path, method):
    src = _matmul_graph(tmp_path / "fp32.onnx")
    rng = np.random.default_rng(1)
    # the widest activations sit in the last stride: a reader that stopped after the first stride would miss them
    feeds = [{"x": rng.normal(size=(64, 8)).astype(np.float32)} for _ in range(32)]
    feeds += [{"x": 10 * rng.normal(size=(64, 8)).astype(np.float32)} for _ in range(8)]
    one_pass = _activation_scales(quantize_int8_static(src, tmp_path / "one.onnx", PRESETS["vnni"], feeds, method, stride=1000))
    strided = _activation_scales(quantize_int8_static(src, tmp_path / "strided.onnx", PRESETS["vnni"], feeds, method, stride=8))
    first_only = _activation_scales(quantize_int8_static(src, tmp_path / "first.onnx", PRESETS["vnni"], feeds[:8], method, stride=1000))
    assert one_pass and strided.keys() == one_pass.keys()
    if method == "minmax":
        assert strided == pytest.approx(one_pass, rel=1e-6)
    else:  # histograms merge across strides (ORT drops the values past the last whole bin it adds: the very largest)
        assert strided["x"] == pytest.approx(one_pass["x"], rel=0.05)
    assert strided["x"] > 2 * first_only["x"]


def test_lm_static_calibration_is_strided_too(tmp_path):
    """A decoder's calibration feeds are prefill and decode steps: one pass over all of them would hold every
    activation of every step; strided minmax gives the same ranges."""
    src = _matmul_graph(tmp_path / "fp32.onnx")
    rng = np.random.default_rng(2)
    feeds = [{"x": rng.normal(size=(4, 8)).astype(np.float32)} for _ in range(24)]
    feeds += [{"x": 10 * rng.normal(size=(4, 8)).astype(np.float32)} for _ in range(8)]
    one_pass = _activation_scales(quantize_static_lm(src, tmp_path / "one.onnx", PRESETS["vnni"], HeadSpec(), feeds, stride=1000))
    strided = _activation_scales(quantize_static_lm(src, tmp_path / "strided.onnx", PRESETS["vnni"], HeadSpec(), feeds, stride=8))
    first_only = _activation_scales(quantize_static_lm(src, tmp_path / "first.onnx", PRESETS["vnni"], HeadSpec(), feeds[:8], stride=1000))
    assert one_pass and strided == pytest.approx(one_pass, rel=1e-6)
    assert strided["x"] > 2 * first_only["x"]
