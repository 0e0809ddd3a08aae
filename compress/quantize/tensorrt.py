"""int8 QDQ laid out for TensorRT's explicit quantization, with onnxruntime.quantization.

What TensorRT expects and why each setting (ONNX Runtime's quantizer notes on TensorRT, TensorRT's
"Working with Quantized Types"): int8 activations and weights with zero points of 0 (TensorRT only runs
symmetric int8), per-channel weight scales along MatMul's output axis, one dedicated Q/DQ pair per
consumer (TensorRT cannot share a pair between nodes) and Q/DQ pairs on the weights too (TensorRT folds
them when it builds the engine).  Only MatMul inputs are quantized; TensorRT picks int8 or fp16 kernels
for the rest itself.  The source is the unfused fp32 export: ORT's fused contrib ops are not TensorRT ops.
"""
from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from edge_compress.compress.quantize.ptq import CALIBRATION_METHODS, CalibrationFeeds
from edge_compress.export.quiet import quiet
from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

TENSORRT_SETTINGS = {"format": "QDQ", "activation_type": "int8", "weight_type": "int8", "per_channel": True,
                     "activation_symmetric": True, "weight_symmetric": True, "dedicated_qdq_pair": True,
                     "qdq_pair_on_weights": True, "op_types": ["MatMul"]}


def quantize_int8_tensorrt(src: Path, dst: Path, calibration_feeds: Iterable[dict],
                           method: Literal["minmax", "entropy", "percentile"] = "percentile", percentile: float = 99.99) -> Path:
    extra = {"ActivationSymmetric": True, "WeightSymmetric": True, "DedicatedQDQPair": True, "AddQDQPairToWeight": True,
             "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}}
    if method == "percentile":
        extra["CalibPercentile"] = percentile
    with tempfile.TemporaryDirectory() as tmp, quiet():
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True, skip_optimization=True)
        reader = CalibrationFeeds.for_graph(calibration_feeds, prepared)
        extra.update(reader.strided())
        quantize_static(prepared, dst, reader, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=TENSORRT_SETTINGS["op_types"], per_channel=True, reduce_range=False,
                        activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CALIBRATION_METHODS[method], extra_options=extra)
    return dst


def _build_variant(inp):
    """From the unfused fp32 export, calibrated like the static variant (ORT's fused contrib ops are not TensorRT ops)."""
    from edge_compress.compress.quantize.variants import static_feeds

    spec = inp.ctx.recipe.quantize.static
    return quantize_int8_tensorrt(inp.source, inp.folder / "model.onnx", static_feeds(inp.ctx), spec.calibration_method,
                                  spec.percentile)


def _register() -> None:
    from edge_compress.compress.run.variants import Variant, register

    register(Variant("onnx-int8-tensorrt", "int8", _build_variant, ("text-classification",), order=90,
                     settings=lambda ctx: {"tensorrt": TENSORRT_SETTINGS}, targets=("cpu", "tensorrt"), built_for=("tensorrt",)))


_register()
