"""export.gemm.gemms_to_matmuls: a hand-built graph with every Gemm form; the rewrite must compute the same values
(checked with onnxruntime against numpy) and leave the Gemms it cannot rewrite alone."""
import numpy as np
import onnx
import onnxruntime as ort
from edge_compress.export.gemm import gemms_to_matmuls
from onnx import TensorProto, helper, numpy_helper


def _graph(rng):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    outs = [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [2, None]) for i in range(5)]
    w = rng.standard_normal((4, 3)).astype(np.float32)
    wt = rng.standard_normal((3, 4)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(wt, "wt"), numpy_helper.from_array(b, "b")]
    nodes = [
        helper.make_node("Gemm", ["x", "w", "b"], ["y0"], name="plain"),                    # rewritten: MatMul + Add
        helper.make_node("Gemm", ["x", "wt", "b"], ["y1"], name="transposed", transB=1),   # rewritten with W.T
        helper.make_node("Gemm", ["x", "w"], ["y2"], name="no_bias"),                       # rewritten: MatMul only
        helper.make_node("Gemm", ["x", "w", "b"], ["y3"], name="scaled", alpha=2.0),        # kept: alpha != 1
        helper.make_node("Gemm", ["x", "x"], ["y4"], name="activation", transB=1),          # kept: B is not a weight
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], outs, inits), opset_imports=[helper.make_opsetid("", 17)])
    return model, (w, wt, b)


def _run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})


def test_gemms_with_a_constant_weight_become_matmul_add_with_the_same_values():
    rng = np.random.default_rng(0)
    model, (w, wt, b) = _graph(rng)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    before = _run(model, x)
    assert gemms_to_matmuls(model) == 3
    onnx.checker.check_model(model)
    ops = {n.name: n.op_type for n in model.graph.node}
    assert ops == {"plain_MatMul": "MatMul", "plain_Add": "Add", "transposed_MatMul": "MatMul", "transposed_Add": "Add",
                   "no_bias_MatMul": "MatMul", "scaled": "Gemm", "activation": "Gemm"}
    after = _run(model, x)
    expected = [x @ w + b, x @ wt.T + b, x @ w, 2 * (x @ w) + b, x @ x.T]
    for got, old, want in zip(after, before, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, old, rtol=1e-6, atol=1e-6)
    # the transposed weight is stored transposed; the original `wt` initializer is gone (no longer used)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert "wt" not in inits and np.array_equal(inits["wt_t"], wt.T)
    assert gemms_to_matmuls(model) == 0  # idempotent
