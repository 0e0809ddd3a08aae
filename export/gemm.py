"""Rewrite weight Gemms as MatMul + Add, so every quantizer sees one kind of weight op.

A Linear applied to a 2-D input exports as Gemm (GPT-2's Conv1D layers did, before
`export.onnx_export.conv1d_as_linear`); ORT's MatMulNBits quantizer only handles MatMul,
and a uniform graph lets one rule pick which weights to quantize.  ORT
fuses MatMul + Add back at session load, so the float model is as fast as before.
"""
from __future__ import annotations

import copy

import onnx
from onnx import helper, numpy_helper


def gemms_to_matmuls(model: onnx.ModelProto) -> int:
    """Rewrite in place every Gemm(A, W, b) with a constant 2-D W, alpha = beta = 1 and no transA; returns how many."""
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    old, rewritten = [copy.deepcopy(n) for n in graph.node], 0
    del graph.node[:]
    for node in old:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        weight = inits.get(node.input[1]) if node.op_type == "Gemm" else None
        if weight is None or len(weight.dims) != 2 or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            graph.node.append(node)
            continue
        b = node.input[1]
        if attrs.get("transB", 0):
            b = f"{b}_t"
            graph.initializer.append(numpy_helper.from_array(numpy_helper.to_array(weight).T.copy(), b))
        has_bias = len(node.input) > 2 and node.input[2]
        product = f"{node.output[0]}_matmul" if has_bias else node.output[0]
        graph.node.append(helper.make_node("MatMul", [node.input[0], b], [product], name=f"{node.name}_MatMul"))
        if has_bias:
            graph.node.append(helper.make_node("Add", [product, node.input[2]], [node.output[0]], name=f"{node.name}_Add"))
        rewritten += 1
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
    return rewritten
