"""ONNX Runtime sessions with pinned threads, and the graph facts that prove int8 kernels run.

Sessions use fixed intra-op threads and one inter-op thread, the same for every variant, so timings compare;
the timing protocol itself (interleaved warmed rounds) is `export/timing.py`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import onnxruntime as ort

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider"}


def available_providers() -> list[str]:
    return ort.get_available_providers()


def session_options(threads: int, optimization: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = optimization
    options.log_severity_level = 3
    return options


def create_session(path: Path, threads: int, provider: str = "cpu", optimized_model_path: Path | None = None) -> ort.InferenceSession:
    """A session on one provider; `optimized_model_path` saves the graph ORT actually runs."""
    options = session_options(threads)
    if optimized_model_path is not None:
        options.optimized_model_filepath = str(optimized_model_path)
    return ort.InferenceSession(str(path), sess_options=options, providers=[PROVIDERS[provider]])


def graph_op_counts(path: Path) -> dict[str, int]:
    """Operator histogram of an ONNX file (used to prove int8 kernels run)."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))


_LAYOUT_OPS = ("Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Cast")


def float_weight_matmuls(path: Path) -> list[str]:
    """MatMuls that still multiply by a float weight: layers the graph ONNX Runtime runs left unquantized.

    A weight counts as float when the MatMul's second input comes from a float initializer (or a Constant),
    or from a DequantizeLinear whose output feeds a float MatMul: an unfused QDQ pair stores int8 but still
    computes in float. Layout-only ops (Transpose, Reshape, ...) between the two are looked through.
    Gemm is not counted (classification heads are exported as Gemm and kept float on purpose).
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    floats = {i.name for i in graph.initializer if i.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)}
    producer = {out: node for node in graph.node for out in node.output}

    def is_float_weight(name: str) -> bool:
        while True:
            if name in floats:
                return True
            node = producer.get(name)
            if node is None:
                return False
            if node.op_type in ("DequantizeLinear", "Constant"):
                return node.op_type == "DequantizeLinear" or _constant_is_float(node)
            if node.op_type not in _LAYOUT_OPS:
                return False
            name = node.input[0]

    return [n.name or f"{n.op_type}:{n.output[0]}" for n in graph.node
            if n.op_type in ("MatMul", "FusedMatMul") and len(n.input) > 1 and is_float_weight(n.input[1])]


def _constant_is_float(node: Any) -> bool:
    import onnx

    value = next((a.t for a in node.attribute if a.name == "value"), None)
    return value is not None and value.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
