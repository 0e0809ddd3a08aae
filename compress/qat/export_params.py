"""Learned quantization parameters -> the names ONNX Runtime's quantizer sees in the exported graph.

Layers are found by their weights, not their names: each quantized Linear's weight appears
(transposed) as a MatMul initializer and each table as a Gather initializer, whatever the exporter
calls the nodes.  This is what lets the QAT export reuse `quantize_int8_static` unchanged.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import onnx
from edge_compress.compress.errors import CompressError
from edge_compress.compress.qat.modules import QuantEmbedding, QuantLinear
from onnx import numpy_helper
from torch import nn

TensorParams = dict[str, tuple[float, int]]


def _digest(array: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(array, dtype=np.float32).tobytes()).hexdigest()


def learned_params(model: nn.Module) -> Callable[[onnx.ModelProto], TensorParams]:
    """A function of the float graph exported from `strip_fake_quant(model)`: {tensor name: (scale, zero point)}."""
    by_weight = {_digest(m.linear.weight.detach().cpu().numpy().T): m.input_quantizer.onnx_params()
                 for m in model.modules() if isinstance(m, QuantLinear)}
    by_table = {_digest(m.embedding.weight.detach().cpu().numpy()): m.table_params()
                for m in model.modules() if isinstance(m, QuantEmbedding)}

    def params_for(graph_model: onnx.ModelProto) -> TensorParams:
        inits = {i.name: i for i in graph_model.graph.initializer}
        params: TensorParams = {}
        found: set[str] = set()
        for node in graph_model.graph.node:
            if node.op_type == "MatMul" and node.input[1] in inits:
                key = _digest(numpy_helper.to_array(inits[node.input[1]]))
                if key in by_weight:
                    _assign(params, node.input[0], by_weight[key], node.name)
                    found.add(key)
            elif node.op_type == "Gather" and node.input[0] in inits:
                key = _digest(numpy_helper.to_array(inits[node.input[0]]))
                if key in by_table:
                    params[node.input[0]] = by_table[key]
        if len(found) < len(by_weight):
            raise CompressError(f"{len(by_weight) - len(found)} of {len(by_weight)} fake-quantized Linear layers have no MatMul "
                                "in the exported graph (the exporter changed their weights or fused them)",
                                "export.opset may change how Linear layers are exported; report this model")
        return params

    return params_for


def _assign(params: TensorParams, tensor: str, value: tuple[float, int], node: str) -> None:
    """One tensor, one QuantizeLinear: Linears reading the same tensor must have learned one shared range."""
    if tensor in params and params[tensor] != value:
        raise CompressError(f"MatMul {node} reads tensor {tensor} with two different learned ranges",
                            "this architecture feeds one tensor to Linears that QAT saw as separate inputs; report it")
    params[tensor] = value
