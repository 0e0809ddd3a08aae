"""One builder for every task: build -> complete folder -> parity -> score -> manifest, or a recorded failure.

Every folder is finished (export.hf_manifest.finish_folder: weights into model.onnx.data, export.json beside
them) before it is scored, so what the report measures is the folder that ships, and it loads with
`transformers.exporters.ExportedModel.from_pretrained` as well as plain onnxruntime.  Quantizing or fusing keeps a
graph's input and output names, so a variant carries the manifest of its own export, or its parent's.

Latency is not measured here: every built model is timed afterwards, together, in the
measure step (compress.run.measure), so the builder keeps what that step needs to
reopen each model (`Built.open`).  One broken variant is recorded as failed and the
run goes on; only a `fatal` record (the fp32 export) stops it.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_compress.compress.console import info, warn
from edge_compress.compress.environment import library_versions
from edge_compress.compress.errors import CompressError
from edge_compress.compress.outputs import raise_if_disk_full
from edge_compress.compress.report.schema import Analysis, Entry, Noise, SizeBreakdown, TargetResult
from edge_compress.compress.report.size import size_breakdown, torch_breakdown
from edge_compress.compress.run.context import RunContext
from edge_compress.compress.run.measure import TorchCuda, onnx_params, onnx_size, runtime_graph, torch_params
from edge_compress.compress.run.resume import ResumeStore, activated
from edge_compress.compress.run.variants import BuildInput, Line, Variant
from edge_compress.compress.tasks.base import Scored
from edge_compress.export.hf_manifest import finish_folder, model_files, read_manifest
from edge_compress.export.memory import peak_memory


@dataclass
class Built:
    """A model that built and scored; its latency comes from the measure step."""
    entry: Entry                                   # without latency yet
    scored: Scored
    open: dict[str, Callable[[], Any]] = field(default_factory=dict)   # target -> what the evaluation times
    ctx: Any = None   # the line's own RunContext (its tokenizer times and packages it), when not the run's: trim_stage


class Builder:
    def __init__(self, ctx: RunContext, stage: Path, store: ResumeStore | None = None) -> None:
        self.ctx, self.stage = ctx, stage
        self.store = store or ResumeStore(stage, "", enabled=False)
        self.reference: Scored | None = None

    # --- the PyTorch baseline ----------------------------------------------------------------------------------------

    def baseline(self) -> Built:
        ctx, task = self.ctx, self.ctx.task
        model = ctx.ckpt.model
        handle = task.open_torch(model)
        kept = self.store.load("baseline")
        if kept is not None:  # resumed: the scores of the killed run, reopened for the timing rounds
            entry, self.reference = kept
            cuda = functools.cache(lambda: TorchCuda(copy.deepcopy(model).to("cuda").eval()))
            opens = {"cpu": lambda: handle, **{t.name: cuda for t in ctx.targets.measured[1:]
                                               if t.name in entry.targets and not entry.targets[t.name].error}}
            return Built(entry, self.reference, opens)
        built = self._baseline(model, handle)
        self.store.save("baseline", (built.entry, built.scored))
        return built

    def _baseline(self, model, handle) -> Built:
        ctx = self.ctx
        info("validating the PyTorch fp32 baseline")
        with peak_memory() as peak:
            self.reference = ctx.evaluation.score(handle, "pytorch-fp32")
        metrics, metrics_batch = ctx.evaluation.metrics(self.reference, None)
        opens: dict[str, Callable[[], Any]] = {"cpu": lambda: handle}
        targets: dict[str, TargetResult] = {}
        for target in ctx.targets.measured[1:]:
            if target.device == "cuda":
                result, opener = self._guarded(f"pytorch-fp32 on {target.name}", lambda: self._torch_cuda(model))
                targets[target.name] = result
                if opener is not None:
                    opens[target.name] = opener
        _, analysis = self._details(self.reference, None)
        entry = Entry("pytorch-fp32", ctx.ckpt.source, "pytorch", "fp32", "torch-cpu", metrics, metrics_batch,
                      peak_memory_mb=peak(), size_bytes=ctx.ckpt.weights_bytes, params=torch_params(model), targets=targets,
                      size_breakdown=torch_breakdown(model, ctx.ckpt.weights_bytes), analysis=analysis)
        return Built(entry, self.reference, opens)

    def _torch_cuda(self, model) -> tuple[TargetResult, Callable[[], Any]]:
        import torch

        with peak_memory("cuda") as peak:
            runner = TorchCuda(copy.deepcopy(model).to("cuda").eval())
            scored = self.ctx.evaluation.score(runner, "pytorch-fp32 on cuda")
        metrics, _ = self.ctx.evaluation.metrics(scored, None)
        torch.cuda.empty_cache()
        return TargetResult("torch-cuda", metrics, peak_memory_mb=peak()), lambda: runner

    # --- variants ----------------------------------------------------------------------------------------------------

    def build(self, variant: Variant, line: Line) -> Built | Entry:
        """The variant's folder, scored on every target it is measured on; a failed Entry when it cannot be built."""
        ctx = line.ctx or self.ctx   # a line with its own tokenizer encodes, exports, calibrates and scores with it
        task = ctx.task
        name = line.prefix + variant.name
        settings = {**variant.settings(ctx), **line.settings}
        source = None
        if variant.parent:
            source = next((line.built[p] for p in variant.parent if p in line.built), None)
            if source is None:
                needs = " or ".join(variant.parent)
                return self._failed(name, None, variant.precision, settings, f"needs {needs}, which did not build")
        folder = self.stage / "variants" / name
        step, inputs = f"variant {name}", settings   # the settings before the build adds what it learned
        kept = self.store.load(step, inputs) if folder.is_dir() else None
        if kept is not None:
            return self._resumed(variant, line, ctx, folder, *kept)
        shutil.rmtree(folder, ignore_errors=True)  # half-built by a killed run
        folder.mkdir(parents=True)
        info(f"building {name}")
        try:
            with activated(self.store, step):   # a torch stage inside the build (QAT) keeps its checkpoint
                result = variant.build(BuildInput(ctx, line, folder, source, settings))
            path, learned = result if isinstance(result, tuple) else (result, {})
            settings = {**settings, **learned}
            task.complete_folder(folder, line.model)
            _finish(folder, source)
            ctx.ship_tokenizer.save_pretrained(folder)
            if variant.parity:
                task.check_parity(ctx, line.model, path)
            with peak_memory() as peak:
                scored = ctx.evaluation.score(task.open_onnx(path, ctx.threads), name)
            metrics, metrics_batch = ctx.evaluation.metrics(scored, self.reference)
            noise, analysis = self._details(scored, self.reference)
            graphs = task.graph_paths(path)
            graph = merged_runtime_graph([runtime_graph(p) for p in graphs])
            breakdown = merged_breakdown([size_breakdown(p, getattr(line.model.config, "model_type", None)) for p in graphs])
        except Exception as err:  # a broken variant must not sink the others (a full disk sinks the run)
            raise_if_disk_full(err, self.stage)
            if variant.fatal:
                raise
            return self._failed(name, folder, variant.precision, settings, _message(err))
        opens: dict[str, Callable[[], Any]] = {"cpu": lambda: task.open_onnx(path, ctx.threads)}
        targets: dict[str, TargetResult] = {}
        for target in ctx.targets.measured[1:]:
            if target.name in variant.targets:
                result, opener = self._guarded(f"{name} on {target.name}",
                                               lambda t=target: self._on_target(path, name, variant, t, ctx))
                targets[target.name] = result
                if opener is not None:
                    opens[target.name] = opener
        line.built[variant.name] = path
        entry = Entry(name, str(folder), "onnx", variant.precision, "CPUExecutionProvider", metrics, metrics_batch,
                      peak_memory_mb=peak(), size_bytes=sum(map(onnx_size, graphs)), params=sum(map(onnx_params, graphs)),
                      graph=graph,
                      settings=settings, targets=targets, noise=noise, size_breakdown=breakdown, analysis=analysis)
        _write_manifest(folder, entry, source, ctx)
        self.store.save(step, (entry, scored, path.relative_to(folder)), inputs)
        return Built(entry, scored, opens, line.ctx)

    def _resumed(self, variant: Variant, line: Line, ctx: RunContext, folder: Path, entry: Entry, scored: Scored,
                 graph: Path) -> Built:
        """A variant the killed run finished: its folder and scores as they were, reopened for the timing rounds."""
        path = folder / graph
        line.built[variant.name] = path
        opens: dict[str, Callable[[], Any]] = {"cpu": lambda: ctx.task.open_onnx(path, ctx.threads)}
        for target in ctx.targets.measured[1:]:
            if target.name in variant.targets and entry.targets.get(target.name) and not entry.targets[target.name].error:
                opens[target.name] = lambda t=target: ctx.task.open_onnx(path, ctx.threads, t, variant.precision, ctx)
        return Built(entry, scored, opens, line.ctx)

    def _details(self, scored: Scored, baseline: Scored | None) -> tuple[Noise | None, Analysis | None]:
        """Noise and what changed, where the task's evaluation computes them (an evaluation without `details`: none)."""
        details = getattr(self.ctx.evaluation, "details", None)
        if details is None:
            return None, None
        try:
            return details(scored, baseline, self.ctx.recipe.report.examples)
        except Exception as err:  # noqa: BLE001  (report-only figures must not fail a variant that built and scored)
            warn(f"noise and flipped examples left out: {_message(err)}")
            return None, None

    def _on_target(self, path: Path, name: str, variant: Variant, target, ctx: RunContext
                   ) -> tuple[TargetResult, Callable[[], Any]]:
        """Scored on `target`; the runner stays open for the timing rounds (a TensorRT engine takes minutes to build)."""
        with peak_memory(target.device) as peak:
            runner = ctx.task.open_onnx(path, ctx.threads, target, variant.precision, ctx)
            scored = ctx.evaluation.score(runner, f"{name} on {target.name}")
        metrics, _ = ctx.evaluation.metrics(scored, self.reference)
        return TargetResult(target.providers[0], metrics, peak_memory_mb=peak()), lambda: runner

    def _guarded(self, label: str, run: Callable[[], tuple[TargetResult, Callable[[], Any]]]
                 ) -> tuple[TargetResult, Callable[[], Any] | None]:
        """One target failing on one model (a missing kernel, an engine that will not build) is recorded, not fatal."""
        info(f"measuring {label}")
        try:
            return run()
        except Exception as err:  # noqa: BLE001 -- any failure of one target is recorded (docstring)
            warn(f"{label} failed: {_message(err)}")
            return TargetResult(error=_message(err)), None

    def _failed(self, name: str, folder: Path | None, precision: str, settings: dict, error: str) -> Entry:
        warn(f"{name} failed and is left out: {error}")
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        return Entry(name, None, "onnx", precision, settings=settings, error=error)


def _finish(folder: Path, parent: Path | None) -> None:
    """export.json and model.onnx.data in `folder`, from its own export's manifest or its parent variant's."""
    manifest = read_manifest(folder) or (read_manifest(parent.parent) if parent is not None else None)
    if manifest is None:
        raise CompressError(f"{folder.name} has no export.json and neither has the variant it was built from",
                            "the task's export must write one (export.hf_manifest.single_graph_manifest)")
    finish_folder(folder, manifest)
def merged_runtime_graph(graphs: list[dict[str, Any]]) -> dict[str, Any]:
    """One runtime-graph summary over a variant's graphs: op counts and float-weight MatMuls summed."""
    if len(graphs) == 1:
        return graphs[0]
    merged: dict[str, Any] = {}
    for graph in graphs:
        for key, value in graph.items():
            if isinstance(value, dict):
                counts = merged.setdefault(key, {})
                for op, n in value.items():
                    counts[op] = counts.get(op, 0) + n
            else:
                merged[key] = merged.get(key, 0) + value
    return merged


def merged_breakdown(parts: list[SizeBreakdown | None]) -> SizeBreakdown | None:
    """The size breakdown of a multi-graph variant: every graph's parts summed (None if any graph has none)."""
    if len(parts) == 1 or any(p is None for p in parts):
        return parts[0] if len(parts) == 1 else None
    totals: dict[str, int] = {}
    for part in parts:
        for name, size in part.parts.items():
            totals[name] = totals.get(name, 0) + size
    return SizeBreakdown(totals, sum(p.initializer_bytes for p in parts), sum(p.file_bytes for p in parts), parts[0].family)


def _message(err: Exception) -> str:
    return str(err) if isinstance(err, CompressError) else f"{type(err).__name__}: {err}"


def _write_manifest(folder: Path, entry: Entry, parent: Path | None, ctx: RunContext) -> None:
    manifest = {"variant": entry.name, "made_from": parent.parent.name if parent else "pytorch checkpoint",
                "checkpoint": ctx.ckpt.source, "input_sha256": _sha256(model_files(parent)) if parent else None,
                "settings": entry.settings, "metrics": entry.metrics, "versions": library_versions(),
                "recipe": ctx.recipe.model_dump(by_alias=True)}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _sha256(paths: list[Path]) -> str:
    """One digest over the graph and its external weights, in that order (both are the parent model)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
