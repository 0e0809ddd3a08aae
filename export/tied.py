"""Tied embedding / LM-head weights in an ONNX graph: find them, store them once.

The exporter writes the LM head as `MatMul(hidden, W)` with W the transposed
embedding table.  optimum replaces that copy with `Transpose(embedding)` for some
architectures but not all (Gemma 3's head was stored twice: +0.67 GB); `dedupe_tied`
does it for any graph, and `find_tied_head` tells the quantizers which MatMul and
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
