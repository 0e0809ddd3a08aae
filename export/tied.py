"""Tied embedding / LM-head weights in an ONNX graph: find them, store them once.

The exporter writes the LM head as `MatMul(hidden, W)` with W the transposed embedding table, folded into a copy
for small tables (Gemma 3's head was once stored twice: +0.67 GB) and, for large ones, fused by ORT's fusions into
`FusedMatMul(hidden, table, transB=1)`.  `dedupe_tied` replaces a copy by `Transpose(table)`, `unfuse_tied_head`
turns the FusedMatMul back into Transpose + MatMul, and `find_tied_head` tells the quantizers which MatMul and
Gather share one table so the quantized table can be shared too.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper


@dataclass(frozen=True)
class TiedHead:
    table: str            # initializer [vocab, hidden] read by the embedding Gather
    gather: onnx.NodeProto
    matmul: onnx.NodeProto  # the LM head: MatMul(hidden, Transpose(table))
    transpose: onnx.NodeProto


def _initializers(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    return {t.name: t for t in graph.initializer}


def dedupe_tied(model: onnx.ModelProto) -> int:
    """Replace each 2-D MatMul weight that equals the transpose of an embedding table by Transpose(table).

    Returns the bytes saved.  Only Gather tables are candidates, so unrelated equal weights stay as they are.
    """
    graph = model.graph
    inits = _initializers(graph)
    tables = {n.input[0] for n in graph.node if n.op_type == "Gather" and n.input[0] in inits and len(inits[n.input[0]].dims) == 2}
    saved = 0
    for table_name in tables:
        table = inits[table_name]
        vocab, hidden = table.dims
        users = [n for n in graph.node if n.op_type == "MatMul" and n.input[1] in inits
                 and list(inits[n.input[1]].dims) == [hidden, vocab] and n.input[1] != table_name]
        if not users:
            continue
        values = numpy_helper.to_array(table)
        for node in users:
            weight = inits[node.input[1]]
            if not np.array_equal(numpy_helper.to_array(weight), values.T):
                continue
            transposed = f"{table_name}_transposed_tied"
            if not any(n.output[0] == transposed for n in graph.node):
                graph.node.insert(list(graph.node).index(node),
                                  helper.make_node("Transpose", [table_name], [transposed], perm=[1, 0], name=f"{table_name}_tie"))
            saved += len(weight.raw_data) or values.nbytes
            graph.initializer.remove(weight)
            node.input[1] = transposed
    return saved


def unfuse_tied_head(model: onnx.ModelProto) -> int:
    """Rewrite FusedMatMul(hidden, table, transB=1) reading an embedding Gather's table as Transpose + MatMul.

    ONNX Runtime's fusions fold the LM head's Transpose(table) into a FusedMatMul when the table is too large to
    constant-fold (Gemma 3 270M's 262k x 640); `find_tied_head` and the quantizers know the MatMul form, and ONNX
    Runtime fuses it back when it loads the graph.  Returns how many were rewritten."""
    graph = model.graph
    inits = _initializers(graph)
    tables = {n.input[0] for n in graph.node if n.op_type == "Gather" and n.input[0] in inits and len(inits[n.input[0]].dims) == 2}
    old, rewritten = list(graph.node), 0
    del graph.node[:]
    for node in old:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = attrs.get("alpha", 1.0) == 1.0 and not attrs.get("transA", 0) and not attrs.get("transBatchA", 0) \
            and not attrs.get("transBatchB", 0)
        if node.op_type != "FusedMatMul" or node.input[1] not in tables or not attrs.get("transB", 0) or not plain:
            graph.node.append(node)
            continue
        table = node.input[1]
        name = "/lm_head/MatMul" if "logits" in node.output else f"{node.name}_MatMul"
        graph.node.extend([helper.make_node("Transpose", [table], [f"{table}_transposed_tied"], perm=[1, 0], name=f"{table}_tie"),
                           helper.make_node("MatMul", [node.input[0], f"{table}_transposed_tied"], list(node.output), name=name)])
        rewritten += 1
    return rewritten


def find_tied_head(model: onnx.ModelProto) -> TiedHead | None:
    """The MatMul whose weight is Transpose(T) where T is also an embedding Gather's table, if any."""
    graph = model.graph
    inits = _initializers(graph)
    producers = {o: n for n in graph.node for o in n.output}
    gathers = {n.input[0]: n for n in graph.node if n.op_type == "Gather" and n.input[0] in inits}
    for node in graph.node:
        if node.op_type != "MatMul":
            continue
        source = producers.get(node.input[1])
        if source is not None and source.op_type == "Transpose" and source.input[0] in gathers:
            perm = next((list(a.ints) for a in source.attribute if a.name == "perm"), [1, 0])
            if perm == [1, 0] and len(inits[source.input[0]].dims) == 2:
                return TiedHead(source.input[0], gathers[source.input[0]], node, source)
    return None
