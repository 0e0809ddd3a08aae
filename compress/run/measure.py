"""Measure one model (PyTorch or ONNX) on the eval set: task metrics, latency, size.

Every variant goes through the same `Evaluation` object, so all of them see the
same tokenized inputs, the same thread count and the same timing protocol.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch

from compress.console import progress
from export.runtime import Latency, create_session, float_weight_matmuls, graph_op_counts, measure_latency

Feed = dict[str, np.ndarray]
Runner = Callable[[Feed], np.ndarray]


class Timed(Protocol):
    """A runner timed on inputs prepared beforehand (e.g. already copied to a GPU), so preparation is not timed."""

    def prepare(self, feed: Feed) -> Any: ...

    def timed(self, prepared: Any) -> None: ...


@dataclass
class Measurement:
    outputs: np.ndarray
    latency: Latency
    latency_batch: Latency
    peak_memory_mb: float | None = None


class Evaluation:
    """Tokenized eval inputs, built once: length-sorted batches for metrics, single texts for latency."""

    def __init__(self, texts: list[str], tokenizer, max_length: int, batch_size: int, latency_samples: int, warmup: int) -> None:
        self.size, self.batch_size, self.warmup = len(texts), batch_size, warmup
        encode = lambda chunk: dict(tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="np"))
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
        self.order = np.argsort(lengths, kind="stable")
        self.batches = [encode([texts[i] for i in self.order[s:s + batch_size]]) for s in range(0, len(texts), batch_size)]
        timed = texts[:latency_samples]
        self.singles = [encode([t]) for t in timed]
        self.single_len = float(np.mean([f["input_ids"].shape[1] for f in self.singles]))
        # Larger batch: consecutive eval texts (not length-sorted), padded as a server would.
        n_big = max(1, min(8, len(texts) // batch_size))
        self.big = [encode(texts[s * batch_size:(s + 1) * batch_size]) for s in range(n_big)]
        self.big_len = float(np.mean([f["attention_mask"].sum(1).mean() for f in self.big]))

    def measure(self, run: Runner, label: str, threads: int, timed: Timed | None = None) -> Measurement:
        outputs: list[np.ndarray] = []
        with progress() as bar:
            task = bar.add_task(f"{label}: accuracy", total=len(self.batches))
            for feed in self.batches:
                outputs.append(run(feed))
                bar.advance(task)
        merged = np.empty((self.size, *outputs[0].shape[1:]), dtype=np.float32)
        merged[self.order] = np.concatenate(outputs)
        with progress() as bar:
            bar.add_task(f"{label}: latency ({threads} threads)", total=None)
            call, prepare = (timed.timed, timed.prepare) if timed else (run, lambda feed: feed)
            single = measure_latency(call, [prepare(f) for f in self.singles], 1, self.single_len, self.warmup)
            batch = measure_latency(call, [prepare(f) for f in self.big], self.big[0]["input_ids"].shape[0], self.big_len,
                                    min(2, self.warmup))
        return Measurement(merged, single, batch)


def torch_runner(model: torch.nn.Module, output: str = "logits") -> Runner:
    def run(feed: Feed) -> np.ndarray:
        with torch.inference_mode():
            return getattr(model(**{k: torch.from_numpy(v) for k, v in feed.items()}), output).float().numpy()
    return run


def onnx_runner(path: Path, threads: int, provider: str = "cpu", output: str = "logits", optimized_graph: Path | None = None) -> Runner:
    session = create_session(path, threads, provider, optimized_graph)
    names = {i.name for i in session.get_inputs()}

    def run(feed: Feed) -> np.ndarray:
        return session.run([output], {k: v for k, v in feed.items() if k in names})[0]
    return run


def onnx_size(path: Path) -> int:
    """Bytes on disk of the ONNX file and any external-data files next to it."""
    return path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(f"{path.name}_data*"))


def onnx_params(path: Path) -> int:
    """Elements of weight initializers (scales and zero points of one element are skipped)."""
    import onnx

    total = 0
    for init in onnx.load(str(path)).graph.initializer:
        count = int(np.prod(init.dims)) if init.dims else 1
        total += count if count > 1 else 0
    return total


def torch_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


INT8_OPS = {"MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "QLinearMatMul", "MatMulIntegerToFloat", "QGemm",
            "QEmbedLayerNormalization", "QOrderedMatMul"}
FLOAT_MATMUL_OPS = {"MatMul", "FusedMatMul", "Gemm", "Attention", "MultiHeadAttention"}


def runtime_graph(path: Path) -> dict:
    """Ops of the graph ONNX Runtime actually executes after its own fusions: proof that int8 kernels run,
    and `float_weight_matmuls`: MatMuls that still multiply by a float weight (a layer left unquantized)."""
    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "runtime.onnx"
        onnx_runner(path, 1, optimized_graph=optimized)
        ops = graph_op_counts(optimized)
        float_weights = float_weight_matmuls(optimized)
    return {"int8_ops": {k: n for k, n in ops.items() if k in INT8_OPS},
            "float_matmul_ops": {k: n for k, n in ops.items() if k in FLOAT_MATMUL_OPS},
            "float_weight_matmuls": len(float_weights)}
