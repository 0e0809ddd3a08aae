"""Runners, sizes, the runtime graph, and the measure step: every built model timed in interleaved rounds.

Accuracy is scored while each variant is built (compress.run.builder); latency is
measured afterwards, for all models together, so their timings share the same
rounds (export.timing): at least `validate.rounds` rounds, each model opened,
warmed and timed once per round, the median over rounds reported with its spread.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edge_compress.compress.console import info, warn
from edge_compress.export.hf_manifest import model_files
from edge_compress.export.runtime import create_session, float_weight_matmuls, graph_op_counts
from edge_compress.export.timing import RoundLatency, round_robin, summarize

Feed = dict[str, np.ndarray]
Runner = Callable[[Feed], np.ndarray]


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
    """Bytes on disk of the graph and its external weights (model.onnx.data, where every variant keeps them)."""
    return sum(p.stat().st_size for p in model_files(path))


def onnx_params(path: Path) -> int:
    """Elements of weight initializers (scales and zero points of one element are skipped)."""
    import onnx

    total = 0
    for init in onnx.load(str(path), load_external_data=False).graph.initializer:
        count = int(np.prod(init.dims)) if init.dims else 1
        total += count if count > 1 else 0
    return total


def torch_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


INT8_OPS = {"MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "QLinearMatMul", "MatMulIntegerToFloat", "QGemm",
            "QEmbedLayerNormalization", "QOrderedMatMul"}
WEIGHT_ONLY_OPS = {"MatMulNBits", "GatherBlockQuantized"}
FLOAT_MATMUL_OPS = {"MatMul", "FusedMatMul", "Gemm", "Attention", "MultiHeadAttention", "GroupQueryAttention"}


def runtime_graph(path: Path) -> dict[str, Any]:
    """Ops of the graph ONNX Runtime actually executes after its own fusions: proof that int8 (or weight-only) kernels
    run, and `float_weight_matmuls`: MatMuls that still multiply by a float weight (a layer left unquantized).
    The same summary for every task."""
    with tempfile.TemporaryDirectory() as tmp:
        optimized = Path(tmp) / "runtime.onnx"
        onnx_runner(path, 1, optimized_graph=optimized)
        ops = graph_op_counts(optimized)
        float_weights = float_weight_matmuls(optimized)
    return {"int8_ops": {k: n for k, n in ops.items() if k in INT8_OPS},
            "weight_only_ops": {k: n for k, n in ops.items() if k in WEIGHT_ONLY_OPS},
            "float_matmul_ops": {k: n for k, n in ops.items() if k in FLOAT_MATMUL_OPS},
            "float_weight_matmuls": len(float_weights)}


@dataclass(frozen=True)
class Subject:
    """One model on one target, to be timed: `open()` gives what the task's evaluation times (called once per round)."""
    name: str
    target: str
    open: Callable[[], Any]
    evaluation: Any = None   # times it when not the run's evaluation (a line with its own tokenizer feeds its own ids)


@dataclass(frozen=True)
class Timing:
    single: RoundLatency
    batch: RoundLatency
    extras: dict[str, float]


def measure(evaluation: Any, subjects: list[Subject], rounds: int) -> dict[tuple[str, str], Timing | str]:
    """{(name, target): Timing, or the error that stopped that model's timing}; all subjects take turns in every round."""
    errors: dict[tuple[str, str], str] = {}

    def opener(subject: Subject):
        key = (subject.name, subject.target)

        def open_block():
            if key in errors:
                return dict
            try:
                block = (subject.evaluation or evaluation).timing(subject.open())
            except Exception as err:  # noqa: BLE001 -- one model failing on one target (a missing kernel) is recorded, not fatal
                return _failed(key, err)

            def timed() -> dict[str, list[float]]:
                try:
                    return block()
                except Exception as err:  # noqa: BLE001 -- as above, while timing
                    return _failed(key, err)()
            return timed
        return open_block

    def _failed(key, err):
        errors[key] = f"{type(err).__name__}: {err}"
        warn(f"timing {key[0]} on {key[1]} failed: {errors[key]}")
        return dict

    info(f"timing {len(subjects)} models in {rounds} interleaved rounds")
    samples = round_robin({(s.name, s.target): opener(s) for s in subjects}, rounds,
                          on_round=lambda r: info(f"timing round {r + 1}/{rounds} done"))
    results: dict[tuple[str, str], Timing | str] = {}
    for key, per_round in samples.items():
        if key in errors:
            results[key] = errors[key]
            continue
        single = summarize([r["single"] for r in per_round], 1, evaluation.seq_len)
        batch = summarize([r["batch"] for r in per_round], evaluation.batch_size, evaluation.batch_seq_len)
        extras = {name: float(np.median([np.median(r[name]) for r in per_round]))
                  for name in per_round[0] if name not in ("single", "batch")}
        results[key] = Timing(single, batch, extras)
    return results


class TorchCuda:
    """The PyTorch model on the GPU, timed on inputs already on the device and synchronised after each run."""

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self, feed: Feed) -> np.ndarray:
        with torch.inference_mode():
            return self.model(**self.prepare(feed)).logits.float().cpu().numpy()

    def prepare(self, feed: Feed) -> dict:
        return {k: torch.from_numpy(v).to("cuda") for k, v in feed.items()}

    def timed(self, prepared: dict) -> None:
        with torch.inference_mode():
            self.model(**prepared)
        torch.cuda.synchronize()
