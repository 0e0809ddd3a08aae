"""LM variants from the fp32 KV-cache graph: int8 dynamic, int8 static (QDQ), weight-only int4/int8 (MatMulNBits).

Common rules, each for accuracy:
- Only MatMuls with a constant weight are int8-quantized; attention's activation x
  activation MatMuls (QK^T, PV) stay float.
- The LM head and the embedding it is tied to never get int8 *activation*
  quantization: they become one shared weight-only table (`export.tied_head`).
- `exclude` names further MatMuls to keep in float (e.g. from `sensitivity`): exact node names
  or shell-style patterns (`*/mlp/down_proj/*`).  A MatMul ONNX Runtime's fusions packed from several
  (q/k/v, gate/up; `export.lm_export` names it after all of them) matches when one of its parts does,
  so `exclude` keeps it whole in float; the int4 variant unpacks one whose parts `keep_8bit` splits.
- The int4 weight-only variant is mixed precision: `keep_8bit` patterns name the MatMuls that
  stay at 8 bits.  On Gemma 3 270M, 4-bit RTN on every body MatMul costs +31 % perplexity, and
  one projection type at a time at 4 bits (the rest fp32) costs: down_proj +7.4 %, v_proj +7.0 %,
  up_proj +4.7 %, o_proj +2.1 %, gate_proj +1.3 %, q_proj +1.3 %, k_proj -0.2 % (bench/RESULTS.md).
"""
from __future__ import annotations

import fnmatch
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import onnx
from edge_compress.compress.console import warn
from edge_compress.compress.quantize.presets import Int8Preset
from edge_compress.compress.quantize.ptq import CALIBRATION_STRIDE, CalibrationFeeds
from edge_compress.export.hf_manifest import model_files
from edge_compress.export.lm_export import PACKED_SEPARATOR, unpack_matmuls
from edge_compress.export.onnx_io import PROTOBUF_LIMIT, load_model, save_model
from edge_compress.export.quiet import quiet
from edge_compress.export.tied import find_tied_head
from edge_compress.export.tied_head import quantize_tied_head
from onnxruntime.quantization import (
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_dynamic,
    quantize_static,
)

QUANT_TYPES = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
# ONNX shape inference stops at ORT's fused ops (RotaryEmbedding, SkipSimplifiedLayerNormalization): tensors it leaves
# untyped are float, as everything a decoder's MatMuls read is.
_FLOAT_DEFAULT = {"DefaultTensorType": onnx.TensorProto.FLOAT}


@dataclass(frozen=True)
class HeadSpec:
    """How the tied LM head / embedding is stored: weight-only, `bits` per weight, blocks along hidden."""
    bits: int = 8
    block_size: int = 32
    accuracy_level: int | None = None


def weight_matmuls(model: onnx.ModelProto, exclude: Iterable[str] = ()) -> list[str]:
    """Names of MatMuls with a constant weight, except the LM head and `exclude` (names or fnmatch patterns)."""
    inits = {t.name for t in model.graph.initializer}
    tied = find_tied_head(model)
    exclude = list(exclude)
    skip = set(exclude) | ({tied.matmul.name} if tied else set()) | {n.name for n in model.graph.node if "logits" in n.output}
    matmuls = [n.name for n in model.graph.node if n.op_type == "MatMul"]
    unmatched = [p for p in exclude if not any(matches(name, [p]) for name in matmuls)]
    if unmatched:
        warn(f"exclude entries that match no MatMul in the graph (ignored): {', '.join(unmatched)}")
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits and n.name not in skip
            and not matches(n.name, exclude)]


def matches(name: str, patterns: Iterable[str]) -> bool:
    """`name` (or one part of a packed MatMul's name) equals one of `patterns` or matches it as a shell-style pattern."""
    patterns = list(patterns)
    return any(part == p or fnmatch.fnmatchcase(part, p) for part in name.split(PACKED_SEPARATOR) for p in patterns)


def type_activations(model: onnx.ModelProto, nodes: Iterable[str]) -> int:
    """Give each of `nodes`' (weight MatMuls) activation input a value_info with its element type, where it has none.

    ORT's static QDQ quantizer and its calibrator skip a tensor they find no type for (`DefaultTensorType` is read by
    the dynamic quantizer only), and ONNX shape inference types nothing behind ORT's fused ops
    (SkipSimplifiedLayerNormalization, RotaryEmbedding, GroupQueryAttention): on a fused graph most MatMuls then got
    weight Q/DQ only and ran as weight-only MatMulNBits.  MatMul's inputs share one type (its `T` constraint), so the
    constant weight's type is the activation's: exact, without inferring through ops ONNX does not know.  Returns how
    many were typed (the exact type of a tensor ONNX could infer as well does no harm: inference keeps it)."""
    graph = model.graph
    typed = {v.name for v in [*graph.value_info, *graph.input, *graph.output]
             if v.type.tensor_type.elem_type != onnx.TensorProto.UNDEFINED}
    weights = {t.name: t.data_type for t in graph.initializer}
    wanted = set(nodes)
    added = 0
    for node in graph.node:
        if node.name in wanted and node.input[0] not in typed:
            graph.value_info.append(onnx.helper.make_tensor_value_info(node.input[0], weights[node.input[1]], None))
            typed.add(node.input[0])
            added += 1
    return added


def _finish(dst: Path, head: HeadSpec) -> Path:
    """Store the tied head/embedding weight-only (once) in the quantized graph at `dst`."""
    model = load_model(dst)
    _tied_head(model, head)
    return save_model(model, dst)


def _tied_head(model: onnx.ModelProto, head: HeadSpec) -> None:
    """The tied head weight-only; said aloud when it has to stay float (hidden size not a multiple of the block)."""
    tied = find_tied_head(model)
    if not quantize_tied_head(model, head.bits, head.block_size, head.accuracy_level) and tied is not None:
        hidden = next(t.dims[1] for t in model.graph.initializer if t.name == tied.table)
        warn(f"the tied LM head/embedding stays float: hidden size {hidden} is not a multiple of lm.block_size "
             f"{head.block_size} (set it to a divisor of {hidden})")


def quantize_dynamic_lm(src: Path, dst: Path, preset: Int8Preset, head: HeadSpec, exclude: Iterable[str] = ()) -> Path:
    """int8 weights (per channel) x int8 activations quantized per call: no calibration."""
    nodes = weight_matmuls(load_model(src), exclude)
    if not nodes:  # ORT reads an empty list as "every MatMul"
        shutil.copyfile(src, dst)
        return _finish(dst, head)
    with quiet():
        quantize_dynamic(src, dst, op_types_to_quantize=["MatMul"], nodes_to_quantize=nodes, per_channel=preset.per_channel,
                         reduce_range=preset.reduce_range, weight_type=QUANT_TYPES[preset.weight_type],
                         use_external_data_format=_large(src),
                         extra_options={"WeightSymmetric": preset.weight_symmetric, "MatMulConstBOnly": True, **_FLOAT_DEFAULT})
    return _finish(dst, head)


def quantize_static_lm(src: Path, dst: Path, preset: Int8Preset, head: HeadSpec, feeds: Iterable[dict],
                       exclude: Iterable[str] = (), stride: int = CALIBRATION_STRIDE) -> Path:
    """QDQ int8 with activation ranges calibrated on prefill *and* decode steps (see `compress.tasks.causal_lm.calibration`).

    Only the weight MatMuls' inputs are quantized; their outputs stay float, so ORT runs MatMulIntegerToFloat (the
    classifier's layout, `compress.quantize.ptq`).  Quantizing the outputs as well (QLinearMatMul) puts a per-tensor
    scale on what down_proj / o_proj add to the residual stream, where a decoder's massive activations are: on Gemma 3
    270M (fused graph, minmax, 1,024 eval tokens) perplexity +133 % with outputs quantized, +27 % without
    (bench/RESULTS.md).  Calibration runs `stride` feeds at a time, as the classifier's does."""
    model = load_model(src)
    nodes = weight_matmuls(model, exclude)
    if not nodes:  # ORT reads an empty list as "every MatMul"
        shutil.copyfile(src, dst)
        return _finish(dst, head)
    type_activations(model, nodes)
    reader = CalibrationFeeds(feeds, {i.name for i in model.graph.input})
    with quiet():
        quantize_static(model, dst, reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=["MatMul"],
                        nodes_to_quantize=nodes, per_channel=preset.per_channel, reduce_range=preset.reduce_range,
                        activation_type=QUANT_TYPES[preset.activation_type], weight_type=QUANT_TYPES[preset.weight_type],
                        calibrate_method=CalibrationMethod.MinMax, use_external_data_format=_large(src),
                        extra_options={"WeightSymmetric": preset.weight_symmetric, "ActivationSymmetric": False,
                                       "MatMulConstBOnly": True, "CalibTensorRangeSymmetric": False,
                                       "OpTypesToExcludeOutputQuantization": ["MatMul"], **_FLOAT_DEFAULT,
                                       **reader.strided(stride)},
                        calibration_providers=["CPUExecutionProvider"])
    return _finish(dst, head)


def quantize_weight_only(src: Path, dst: Path, bits: int, block_size: int, head: HeadSpec, accuracy_level: int | None = None,
                         symmetric: bool = False, exclude: Iterable[str] = (), keep_8bit: Iterable[str] = (),
                         unpack_all: bool = False) -> Path:
    """RTN blockwise weight-only MatMulNBits (ORT's quantizer) for the body, `keep_8bit` MatMuls (names or patterns;
    ones that match nothing are ignored: names differ per architecture) at 8 bits; the tied head per `head`.
    `unpack_all`: every packed MatMul becomes its parts, whatever their bits (the search's per-projection copies)."""
    model = load_model(src)
    keep_8bit = list(keep_8bit)
    if unpack_all:
        unpack_matmuls(model, lambda parts: True)
    elif bits < 8 and keep_8bit:  # packed q/k/v, gate/up whose parts get different bits: unpacked first
        unpack_matmuls(model, lambda parts: len({matches(p, keep_8bit) for p in parts}) > 1)
    body = weight_matmuls(model, exclude)
    eight = [n for n in body if bits < 8 and matches(n, keep_8bit)]
    model = _nbits(model, [n for n in body if n not in eight], bits, block_size, accuracy_level, symmetric)
    if eight:
        model = _nbits(model, eight, 8, block_size, accuracy_level, symmetric)
    _tied_head(model, head)
    return save_model(model, dst)


def _nbits(model: onnx.ModelProto, names: list[str], bits: int, block_size: int, accuracy_level: int | None,
           symmetric: bool) -> onnx.ModelProto:
    """MatMulNBits for exactly the MatMuls in `names` (ORT reads an empty include list as "all": hence the exclude list)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    wanted = set(names)
    others = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.name not in wanted]
    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=symmetric, accuracy_level=accuracy_level,
                                          op_types_to_quantize=("MatMul",), bits=bits)
    with quiet():
        quantizer = MatMulNBitsQuantizer(model, algo_config=config, nodes_to_exclude=others)
        quantizer.process()
    return quantizer.model.model


def _large(path: Path) -> bool:
    """Weights past protobuf's limit: the quantizers must write them beside the graph."""
    return sum(f.stat().st_size for f in model_files(path)) > PROTOBUF_LIMIT


