"""Quantize the LM head (and the embedding it is tied to) once, weight-only, shared by both ops.

No library does this: ORT's MatMulNBits quantizer skips a head whose weight is
Transpose(embedding) and, asked to quantize the Gather too, stores the table twice.
The head becomes MatMulNBits(B=packed) and the embedding GatherBlockQuantized reading
the same packed bytes: MatMulNBits stores B as [vocab, hidden/block, block*bits/8],
i.e. the embedding table blockwise-quantized along hidden, which is exactly the
layout GatherBlockQuantized reads for uint8 data (quantize_axis = last).
Weight-only, because the head's activations are the most outlier-prone in the model
and its logits decide every generated token.
"""
from __future__ import annotations

import copy

import numpy as np
import onnx
from edge_compress.export.tied import TiedHead, find_tied_head
from onnx import helper, numpy_helper
from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, DefaultWeightOnlyQuantizer

MS_DOMAIN = "com.microsoft"


def quantize_tied_head(model: onnx.ModelProto, bits: int = 8, block_size: int = 32, accuracy_level: int | None = None,
                       symmetric: bool = False) -> bool:
    """Rewrite the tied head/embedding in place; False (graph untouched) when there is none or hidden % block_size != 0."""
    for i, node in enumerate(model.graph.node):  # replacement below is keyed by node name
        node.name = node.name or f"{node.op_type}_{i}"
    tied = find_tied_head(model)
    if tied is None:
        return False
    graph = model.graph
    table = next(t for t in graph.initializer if t.name == tied.table)
    vocab, hidden = table.dims
    axis = next((a.i for a in tied.gather.attribute if a.name == "axis"), 0)
    if hidden % block_size or axis != 0:
        return False
    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=symmetric, bits=bits)
    weights = numpy_helper.to_array(table)
    packed, scales, zero_points = DefaultWeightOnlyQuantizer(config).qbits_block_quant(np.ascontiguousarray(weights.T))
    blocks = hidden // block_size
    name = tied.table
    inits = [numpy_helper.from_array(packed, f"{name}_q{bits}"), numpy_helper.from_array(scales, f"{name}_scales"),
             numpy_helper.from_array(np.array([vocab, blocks, 1], np.int64), f"{name}_blocks_shape"),
             numpy_helper.from_array(np.array([hidden], np.int64), f"{name}_hidden")]
    head_inputs = [tied.matmul.input[0], f"{name}_q{bits}", f"{name}_scales"]
    gather_inputs = [f"{name}_q{bits}", tied.gather.input[1], f"{name}_scales_blocks"]
    nodes = [helper.make_node("Reshape", [f"{name}_scales", f"{name}_blocks_shape"], [f"{name}_scales_blocks"], name=f"{name}_scales_reshape")]
    if not symmetric:
        # MatMulNBits packs 4-bit zero points two per byte; GatherBlockQuantized wants one per block, shaped like its scales.
        head_inputs.append(f"{name}_zero_points")
        gather_inputs.append(f"{name}_zero_points_blocks")
        inits += [numpy_helper.from_array(zero_points, f"{name}_zero_points"),
                  numpy_helper.from_array(_unpack_zero_points(zero_points, bits, blocks).reshape(vocab, blocks, 1), f"{name}_zero_points_blocks")]
    out = tied.gather.output[0]
    attrs = {"K": hidden, "N": vocab, "bits": bits, "block_size": block_size}
    if accuracy_level:
        attrs["accuracy_level"] = accuracy_level
    nodes += [
        helper.make_node("GatherBlockQuantized", gather_inputs, [f"{out}_blocks"], domain=MS_DOMAIN, name=f"{name}_gather_q{bits}",
                         gather_axis=0, quantize_axis=2, block_size=block_size, bits=bits),
        helper.make_node("Shape", [tied.gather.input[1]], [f"{out}_ids_shape"], name=f"{name}_ids_shape"),
        helper.make_node("Concat", [f"{out}_ids_shape", f"{name}_hidden"], [f"{out}_shape"], axis=0, name=f"{name}_out_shape"),
        helper.make_node("Reshape", [f"{out}_blocks", f"{out}_shape"], [out], name=f"{name}_gather_reshape"),
        helper.make_node("MatMulNBits", head_inputs, list(tied.matmul.output), domain=MS_DOMAIN, name=f"{tied.matmul.name}_q{bits}", **attrs),
    ]
    _replace(model, tied, nodes, inits)
    return True


def _unpack_zero_points(zero_points: np.ndarray, bits: int, blocks: int) -> np.ndarray:
    if bits == 8:
        return zero_points[:, :blocks]
    low, high = zero_points & 0x0F, zero_points >> 4
    return np.stack([low, high], axis=-1).reshape(zero_points.shape[0], -1)[:, :blocks]


def _replace(model: onnx.ModelProto, tied: TiedHead, nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto]) -> None:
    """Emit the embedding nodes where the Gather was and the head where the MatMul was: topological order holds."""
    graph = model.graph
    replacement = {tied.gather.name: nodes[:-1], tied.matmul.name: nodes[-1:], tied.transpose.name: []}
    old = [copy.deepcopy(n) for n in graph.node]
    del graph.node[:]
    for node in old:
        graph.node.extend(replacement.get(node.name, [node]) if node.op_type in ("Gather", "MatMul", "Transpose") else [node])
    graph.initializer.remove(next(t for t in graph.initializer if t.name == tied.table))
    graph.initializer.extend(inits)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
