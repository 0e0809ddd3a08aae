"""The run's deployment targets: which are available, the variants only they need, and measuring on each.

The target table itself (providers, options, which variants mean something
where) is `export/targets.py`; this module applies it to one `compress run`.
CPU results stay the entry's top-level fields (the report's contract since
schema 1); `entry["targets"][name]` holds each target's results, CPU copied in
so every target reads the same way.  A target this machine lacks is reported
with the fix and left out; one that fails on a variant records the error there.
"""
from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from compress.console import info, warn
from compress.errors import CompressError
from compress.quantize.presets import PRESETS, Int8Preset, preset_for
from compress.tasks.base import Task
from compress.run.measure import Evaluation, Feed, Measurement
from export.device import TargetRunner
from export.hardware import CpuInfo
from export.memory import peak_memory
from export.targets import TARGETS, Target, measures, unavailable_reason

Build = Callable[[Path], Path]


def parse_targets(text: str) -> list[str]:
    """`--target cpu,cuda` -> ["cpu", "cuda"] (order kept: the first available one decides the selection)."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in TARGETS]
    if unknown or not names:
        raise CompressError(f"unknown target {', '.join(unknown) or repr(text)}",
                            f"use a comma-separated list of {', '.join(TARGETS)}, e.g. --target cpu,cuda")
    return list(dict.fromkeys(names))


def parse_fixed_shape(text: str) -> tuple[int, int]:
    """`--fixed-shape 1,128` -> (batch 1, sequence 128)."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise CompressError(f"--fixed-shape {text!r} is not BATCH,SEQUENCE", "give two positive integers, e.g. --fixed-shape 1,128")
    return int(parts[0]), int(parts[1])


def preset_for_targets(cpu: CpuInfo, name: str, targets: list[str]) -> Int8Preset:
    """The int8 preset follows where the model ships: a mobile package runs on ARM whatever this host is."""
    if name == "auto" and "mobile" in targets:
        arm = PRESETS["arm64"]
        return dataclasses.replace(arm, reason=f"target mobile (ARM device): {arm.reason}")
    return preset_for(cpu, name)


class TargetRun:
    """Requested targets, resolved against this machine, and the measurements made on them."""

    def __init__(self, requested: list[str]) -> None:
        self.requested = requested
        self.unavailable: dict[str, str] = {}
        self.available: list[Target] = []
        for name in requested:
            reason = unavailable_reason(TARGETS[name])
            if reason is None:
                self.available.append(TARGETS[name])
            else:
                self.unavailable[name] = f"{reason}. Fix: {TARGETS[name].install}"
                warn(f"target {name} is not available and is skipped: {self.unavailable[name]}")

    @property
    def measured(self) -> list[Target]:
        """Targets measured per variant: CPU always (the top-level results), then the requested ones in order."""
        return [TARGETS["cpu"], *(t for t in self.available if t.name != "cpu" and not t.packaged)]

    @property
    def selection_target(self) -> str:
        """The first requested target measured per variant; CPU when none of them is."""
        measured = {t.name for t in self.measured}
        return next((name for name in self.requested if name in measured), "cpu")

    @property
    def gpu(self) -> bool:
        return any(t.device == "cuda" for t in self.available)

    def bind(self, evaluation: Evaluation, task: Task, labels: Any, threads: int, max_length: int) -> None:
        """What measuring needs; given once the eval set is tokenized (targets are resolved before any slow work)."""
        self.evaluation, self.task, self.labels, self.threads, self.max_length = evaluation, task, labels, threads, max_length

    def extra_variants(self, fp32: Path, graph: Path, calibration: Callable[[], tuple[list[Feed], str, float]]
                       ) -> list[tuple[str, str, Build, Path, dict]]:
        """Variants that only an available target needs: (kind, precision, build, parent model, settings)."""
        kinds = list(dict.fromkeys(kind for t in self.available for kind in t.builds))
        plans: list[tuple[str, str, Build, Path, dict]] = []
        if "onnx-fp16" in kinds:
            from export.fp16 import convert_to_fp16

            # From the fused graph when there is one: ORT's fused attention and LayerNorm ops have CUDA fp16 kernels.
            plans.append(("onnx-fp16", "fp16", lambda d: convert_to_fp16(graph, d / "model.onnx"), graph,
                          {"keep_io_types": True}))
        if "onnx-int8-tensorrt" in kinds:
            from compress.quantize.tensorrt import TENSORRT_SETTINGS, quantize_int8_tensorrt

            def build(folder: Path) -> Path:
                feeds, method, percentile = calibration()
                return quantize_int8_tensorrt(fp32, folder / "model.onnx", feeds, method, percentile)
            plans.append(("onnx-int8-tensorrt", "int8", build, fp32, {"tensorrt": TENSORRT_SETTINGS}))
        return plans

    def measure(self, path: Path, name: str, precision: str, entry: dict[str, Any], baseline_outputs: np.ndarray | None) -> dict[str, Any]:
        """entry["targets"]: the CPU results already at the top level, plus each other target this variant means something on."""
        results = {"cpu": _cpu_result(entry)}
        for target in self.measured[1:]:
            if measures(target, name):
                results[target.name] = self._measure_onnx(path, name, precision, target, baseline_outputs)
        return results

    def measure_baseline(self, model, entry: dict[str, Any]) -> dict[str, Any]:
        """The PyTorch baseline on CPU (top level) and, with a GPU target, once on that GPU (for "vs PyTorch on the same GPU")."""
        results = {"cpu": _cpu_result(entry)}
        gpu_targets = [t for t in self.measured if t.device == "cuda"]
        if gpu_targets:
            result = self._guarded(f"{entry['name']} on cuda", lambda: self._measure_torch_cuda(model))
            results.update({t.name: result for t in gpu_targets})
        return results

    def summary(self) -> dict[str, Any]:
        return {"requested": self.requested, "measured": [t.name for t in self.measured],
                "unavailable": self.unavailable, "selection": self.selection_target,
                "providers": {t.name: list(t.providers) for t in self.measured}}

    def _measure_onnx(self, path: Path, name: str, precision: str, target: Target, baseline_outputs: np.ndarray | None) -> dict[str, Any]:
        def run() -> dict[str, Any]:
            with peak_memory(target.device) as peak:
                runner = TargetRunner(path, target, precision, self.threads, self.evaluation.batch_size, self.max_length)
                m = self.evaluation.measure(runner, f"{name} on {target.name}", self.threads, timed=runner)
            return self.result(target.providers[0], m, peak(), baseline_outputs)
        return self._guarded(f"{name} on {target.name}", run)

    def _measure_torch_cuda(self, model) -> dict[str, Any]:
        import torch

        with peak_memory("cuda") as peak:
            runner = _TorchCuda(copy.deepcopy(model).to("cuda").eval())
            m = self.evaluation.measure(runner, "pytorch-fp32 on cuda", self.threads, timed=runner)
            del runner
        torch.cuda.empty_cache()
        return self.result("torch-cuda", m, peak(), None)

    def result(self, provider: str, m: Measurement, peak_mb: float | None, baseline_outputs: np.ndarray | None) -> dict[str, Any]:
        """One target's results for one model, in the same shape as the entry's top-level CPU results."""
        metrics = self.task.metrics(m.outputs, self.labels, baseline_outputs)
        return {"provider": provider, "metrics": {k: round(v, 4) for k, v in metrics.items()},
                "latency_ms": m.latency.as_dict(), "latency_ms_batch": m.latency_batch.as_dict(),
                "peak_memory_mb": peak_mb, "error": None}

    def _guarded(self, label: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """One target failing on one variant (a missing kernel, an engine that will not build) is recorded, not fatal."""
        info(f"measuring {label}")
        try:
            return run()
        except Exception as err:
            warn(f"{label} failed: {type(err).__name__}: {err}")
            return {"error": f"{type(err).__name__}: {err}"}


def _cpu_result(entry: dict[str, Any]) -> dict[str, Any]:
    return {"provider": entry["provider"], "metrics": entry["metrics"], "latency_ms": entry["latency_ms"],
            "latency_ms_batch": entry["latency_ms_batch"], "peak_memory_mb": entry.get("peak_memory_mb"), "error": None}


class _TorchCuda:
    """The PyTorch model on the GPU, timed on inputs already on the device and synchronised after each run."""

    def __init__(self, model) -> None:
        self.model = model

    def __call__(self, feed: Feed) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(**self.prepare(feed)).logits.float().cpu().numpy()

    def prepare(self, feed: Feed) -> dict:
        import torch

        return {k: torch.from_numpy(v).to("cuda") for k, v in feed.items()}

    def timed(self, prepared: dict) -> None:
        import torch

        with torch.inference_mode():
            self.model(**prepared)
        torch.cuda.synchronize()
