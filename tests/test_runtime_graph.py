"""The int8 proof: which MatMuls of a graph still compute in float."""
from __future__ import annotations

import numpy as np
import onnx
from edge_compress.export.runtime import float_weight_matmuls
from onnx import TensorProto, helper, numpy_helper


def _graph(tmp_path, nodes, initializers, name="g.onnx"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], initializers), opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_float_initializer_matmul_is_counted(tmp_path):
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    path = _graph(tmp_path, [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [w])
    assert float_weight_matmuls(path) == ["mm"]


def test_unfused_dequantize_then_float_matmul_is_counted(tmp_path):
    """int8 stored, float computed: DequantizeLinear -> (Transpose) -> MatMul is a float layer."""
    wq = numpy_helper.from_array(np.ones((4, 4), np.int8), "wq")
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    nodes = [helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wdq"]),
             helper.make_node("Transpose", ["wdq"], ["wt"], perm=[1, 0]),
             helper.make_node("MatMul", ["x", "wt"], ["y"], name="dq_mm")]
    assert float_weight_matmuls(_graph(tmp_path, nodes, [wq, scale, zero])) == ["dq_mm"]


def test_integer_matmul_and_activation_matmul_are_not_counted(tmp_path):
    wq = numpy_helper.from_array(np.ones((4, 4), np.int8), "wq")
    xq_scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    nodes = [helper.make_node("MatMul", ["x", "x_t"], ["a"], name="activations"),  # activation x activation
             helper.make_node("Transpose", ["x"], ["x_t"], perm=[1, 0]),
             helper.make_node("DynamicQuantizeLinear", ["a"], ["aq", "as", "az"]),
             helper.make_node("MatMulInteger", ["aq", "wq", "az", "z"], ["acc"]),
             helper.make_node("Cast", ["acc"], ["accf"], to=TensorProto.FLOAT),
             helper.make_node("Mul", ["accf", "s"], ["y"])]
    assert float_weight_matmuls(_graph(tmp_path, nodes, [wq, xq_scale, zero])) == []
