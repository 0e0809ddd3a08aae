"""Post-training int8 quantization of an ONNX model with onnxruntime.quantization.

We call ONNX Runtime's quantizer directly (not optimum's ORTQuantizer wrapper):
it exposes every calibration method and extra option, and calibration data
comes from our own loaders rather than a `datasets.Dataset`.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Literal

import numpy as np
import onnx
from edge_compress.compress.quantize.presets import Int8Preset
from edge_compress.export.onnx_io import load_model, save_model
from edge_compress.export.quiet import quiet
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quant_pre_process,
    quantize_dynamic,
    quantize_static,
)

CALIBRATION_METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
                       "percentile": CalibrationMethod.Percentile}
QUANT_TYPES = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
# MatMul carries the compute; Gather (embeddings) carries most of the bytes. Quantizing the glue ops
# (Add, Reshape, Transpose) in QDQ only adds Q/DQ pairs that the CPU provider cannot fuse.
STATIC_OPS = ["MatMul", "Gather"]
# {tensor name in the prepared graph: (scale, zero point)}, e.g. ranges learned by QAT, used instead of calibrated ones.
LearnedParams = Callable[[onnx.ModelProto], dict[str, tuple[float, int]]]


# Calibration inputs per collection pass.  ORT's calibrators hold every calibrated tensor of a pass in memory before
# reducing it to ranges or histograms: on a QA MiniLM, 128 windows of 384 tokens (attention scores are seq x seq per
# head) took 15 GB in one pass.  ORT's `CalibStridedMinMax` option runs the reader in strides and merges the ranges
# (MinMax) or histograms (entropy, percentile) between them.  Histograms merge to within a bin: when a later stride
# widens the range, ORT adds whole bins of the old width and drops the few values past the last one (the maximum).
CALIBRATION_STRIDE = 16


class CalibrationFeeds(CalibrationDataReader):
    """Feeds restricted to the graph's inputs (a tokenizer may return more, e.g. token_type_ids for RoBERTa), read in
    the ranges ORT asks for (`set_range`, `CalibStridedMinMax`)."""

    def __init__(self, feeds: Iterable[dict], input_names: Collection[str]) -> None:
        self._feeds = [{k: v for k, v in feed.items() if k in input_names} for feed in feeds]  # token ids: small
        self._next, self._end = 0, len(self._feeds)

    @classmethod
    def for_graph(cls, feeds: Iterable[dict], model_path: Path) -> CalibrationFeeds:
        """Restricted to the inputs of the graph at `model_path` (read from its header, not its weights)."""
        return cls(feeds, {i.name for i in onnx.load(str(model_path), load_external_data=False).graph.input})

    def __len__(self) -> int:
        return len(self._feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._next, self._end = start_index, min(end_index, len(self._feeds))

    def get_next(self) -> dict | None:
        if self._next >= self._end:
            return None
        self._next += 1
        return self._feeds[self._next - 1]

    def strided(self, most: int = CALIBRATION_STRIDE) -> dict:
        """The `extra_options` entry that calibrates in strides of at most `most` inputs ({} when one pass fits)."""
        stride = _stride(len(self), most)
        return {} if stride is None else {"CalibStridedMinMax": stride}  # ORT's name; it strides every method


def _stride(count: int, most: int) -> int | None:
    """The largest stride of at most `most` inputs that divides `count` (ORT requires it); None: one pass."""
    if count <= most:
        return None
    return next(size for size in range(most, 0, -1) if count % size == 0)


def quantize_int8_dynamic(src: Path, dst: Path, preset: Int8Preset, nodes: Collection[str] | None = None) -> Path:
    """Weights int8 offline, activations quantized per batch at run time (no calibration).

    `nodes` limits quantization to those node names (mixed precision, compress.search); None = every supported node.
    """
    if nodes is not None and not nodes:  # ORT reads an empty list as "every node"
        return save_model(load_model(src), dst)  # the float graph, with its external weights if it has them
    # Fused contrib ops (Attention, SkipLayerNorm) defeat ONNX shape inference; their outputs are float.
    with quiet():
        quantize_dynamic(src, dst, per_channel=preset.per_channel, reduce_range=preset.reduce_range,
                         nodes_to_quantize=list(nodes) if nodes is not None else None,
                         weight_type=QUANT_TYPES[preset.weight_type],
                         extra_options={"WeightSymmetric": preset.weight_symmetric, "DefaultTensorType": onnx.TensorProto.FLOAT})
    return dst


def quantize_int8_static(src: Path, dst: Path, preset: Int8Preset, calibration_feeds: Iterable[dict],
                         method: Literal["minmax", "entropy", "percentile"] = "percentile", percentile: float = 99.99,
                         learned: LearnedParams | None = None, stride: int = CALIBRATION_STRIDE) -> Path:
    """QDQ int8 with activation ranges from calibration (or `learned`); ORT fuses Q/DQ into integer kernels.

    Calibration runs `stride` inputs at a time (`CALIBRATION_STRIDE`), so its memory does not grow with the data.

    Layout (measured on MiniLM, 2 threads: 18 % faster than quantizing every MatMul input and output,
    same accuracy): the inputs of weight MatMuls are quantized and their outputs stay float, so ORT runs
    MatMulIntegerToFloat with the bias fused; attention's activation x activation MatMuls stay float; the
    embedding tables are int8. Only the MatMuls read the quantized copy of a tensor: residual paths keep
    the float one, as in the QAT model.
    """
    extra = {"WeightSymmetric": preset.weight_symmetric, "ActivationSymmetric": False,
             "OpTypesToExcludeOutputQuantization": ["MatMul"]}
    if method == "percentile":
        extra["CalibPercentile"] = percentile
    zero_point_type = np.uint8 if preset.activation_type == "uint8" else np.int8
    with tempfile.TemporaryDirectory() as tmp, quiet():
        prepared = Path(tmp) / "prepared.onnx"
        # Symbolic shape inference gives up on some exporters' dynamic shapes; ONNX's own inference suffices here.
        # External weights in and out: a variant's graph keeps its weights in model.onnx.data, which the optimizer's
        # copy in its own temporary folder cannot find unless it writes its own.
        quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True, save_as_external_data=True)
        model = onnx.load(str(prepared))
        nodes = weight_nodes(model)
        if learned is not None:
            params = learned(model)
            chosen = set(nodes)  # only layers QAT trained: MatMul activations / Gather tables with learned parameters
            nodes = [n.name for n in model.graph.node if n.name in chosen and n.input[0] in params]
            extra["TensorQuantOverrides"] = {name: [{"scale": np.array(scale, dtype=np.float32), "zero_point": np.array(zp, dtype=zero_point_type)}]
                                             for name, (scale, zp) in params.items()}
        reader = CalibrationFeeds.for_graph(calibration_feeds, prepared)
        extra.update(reader.strided(stride))
        quantize_static(prepared, dst, reader, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=STATIC_OPS, nodes_to_quantize=nodes, per_channel=preset.per_channel,
                        reduce_range=preset.reduce_range, activation_type=QUANT_TYPES[preset.activation_type],
                        weight_type=QUANT_TYPES[preset.weight_type], calibrate_method=CALIBRATION_METHODS[method],
                        extra_options=extra)
    quantized = onnx.load(str(dst))
    _float_residuals(quantized)
    onnx.save(quantized, str(dst))
    return dst


def weight_nodes(model: onnx.ModelProto) -> list[str]:
    """MatMuls with a constant weight (Linear layers) and Gathers from a constant table (embeddings)."""
    inits = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node
            if (n.op_type == "MatMul" and n.input[1] in inits) or (n.op_type == "Gather" and n.input[0] in inits)]


def _float_residuals(model: onnx.ModelProto) -> None:
    """Point every non-MatMul reader of a quantized MatMul input back at the float tensor.

    ORT's quantizer hands the dequantized copy to all readers, so the residual Add would add
    quantization error the MatMul did not need; the QAT model trains with float residuals.
    """
    producer = {out: n for n in model.graph.node for out in n.output}
    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    for dq in [n for n in model.graph.node if n.op_type == "DequantizeLinear"]:
        q = producer.get(dq.input[0])
        consumers = readers.get(dq.output[0], [])
        if q is None or q.op_type != "QuantizeLinear" or not any(c.op_type == "MatMul" for c in consumers):
            continue
        for consumer in consumers:
            if consumer.op_type != "MatMul":
                for i, name in enumerate(consumer.input):
                    if name == dq.output[0]:
                        consumer.input[i] = q.input[0]
