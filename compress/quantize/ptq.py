"""Post-training int8 quantization of an ONNX model with onnxruntime.quantization.

We call ONNX Runtime's quantizer directly (not optimum's ORTQuantizer wrapper):
it exposes every calibration method and extra option, and calibration data
comes from our own loaders rather than a `datasets.Dataset`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Iterable, Literal

import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quant_pre_process, quantize_dynamic, quantize_static)

from compress.quantize.presets import Int8Preset
from export.quiet import quiet

CALIBRATION_METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                       "percentile": CalibrationMethod.Percentile}
QUANT_TYPES = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
# MatMul carries the compute; Gather (embeddings) carries most of the bytes. Quantizing the glue ops
# (Add, Reshape, Transpose) in QDQ only adds Q/DQ pairs that the CPU provider cannot fuse.
STATIC_OPS = ["MatMul", "Gather"]


class _Feeds(CalibrationDataReader):
    """Feeds restricted to the graph's inputs (a tokenizer may return more, e.g. token_type_ids for RoBERTa)."""

    def __init__(self, feeds: Iterable[dict], model_path: Path) -> None:
        names = {i.name for i in onnx.load(str(model_path), load_external_data=False).graph.input}
        self._it = ({k: v for k, v in feed.items() if k in names} for feed in feeds)

    def get_next(self) -> dict | None:
        return next(self._it, None)


def quantize_int8_dynamic(src: Path, dst: Path, preset: Int8Preset) -> Path:
    """Weights int8 offline, activations quantized per batch at run time (no calibration)."""
    # Fused contrib ops (Attention, SkipLayerNorm) defeat ONNX shape inference; their outputs are float.
    with quiet():
        quantize_dynamic(src, dst, per_channel=preset.per_channel, reduce_range=preset.reduce_range,
                         weight_type=QUANT_TYPES[preset.weight_type],
                         extra_options={"WeightSymmetric": preset.weight_symmetric, "DefaultTensorType": onnx.TensorProto.FLOAT})
    return dst


def quantize_int8_static(src: Path, dst: Path, preset: Int8Preset, calibration_feeds: Iterable[dict],
                         method: Literal["minmax", "entropy", "percentile"] = "percentile", percentile: float = 99.99) -> Path:
    """QDQ int8 with activation ranges from calibration; ORT fuses Q/DQ pairs into integer kernels."""
    extra = {"WeightSymmetric": preset.weight_symmetric, "ActivationSymmetric": False}
    if method == "percentile":
        extra["CalibPercentile"] = percentile
    with tempfile.TemporaryDirectory() as tmp, quiet():
        prepared = Path(tmp) / "prepared.onnx"
        # Symbolic shape inference gives up on some exporters' dynamic shapes; ONNX's own inference suffices here.
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        quantize_static(prepared, dst, _Feeds(calibration_feeds, prepared), quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=STATIC_OPS, per_channel=preset.per_channel,
                        reduce_range=preset.reduce_range, activation_type=QUANT_TYPES[preset.activation_type],
                        weight_type=QUANT_TYPES[preset.weight_type], calibrate_method=CALIBRATION_METHODS[method],
                        extra_options=extra)
    return dst
