"""`compress run`: one lifecycle for every task.

    check -> load -> torch stages -> variants -> measure -> select -> package -> write

A rerun after a kill reuses the torch-stage checkpoints, the baseline and the variants the killed run finished
(compress.run.resume); timing, selection and the report are always done again, for all models together.

The same code runs a classifier and a causal LM; what differs lives in the task
(compress.tasks.<task>: data, export, runner, metrics, folder) and in the variant
records the methods register (compress.run.variants).  Everything that can fail on
bad input is checked before the first slow step.  Variants are built in a staging
folder and scored on the same inputs; one broken variant is recorded as failed and
the run goes on.  Then every model is timed in the same interleaved rounds, and
selection, the latency gate and deltas are computed from those timings.
"""
from __future__ import annotations

import contextlib
import dataclasses
import shlex
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edge_compress.compress.console import console, info, warn
from edge_compress.compress.environment import environment
from edge_compress.compress.errors import CompressError
from edge_compress.compress.outputs import check_target, staged
from edge_compress.compress.recipe import Recipe
from edge_compress.compress.report.cards import write_cards
from edge_compress.compress.report.schema import Entry, Report, TargetResult, Tool
from edge_compress.compress.report.select import delta, latency_gate, select
from edge_compress.compress.report.writer import summary_table, write_json, write_report
from edge_compress.compress.run.builder import Builder, Built
from edge_compress.compress.run.context import RunContext, RunOptions, load_context
from edge_compress.compress.run.measure import Subject, Timing, measure
from edge_compress.compress.run.package import package_selected, wants_package
from edge_compress.compress.run.resume import ResumeStore
from edge_compress.compress.run.resume import wanted as resume_wanted
from edge_compress.compress.run.stages import check_stages, torch_stages
from edge_compress.compress.run.targets import TargetRun
from edge_compress.compress.run.variants import for_line, plan
from edge_compress.compress.tasks import get_task
from rich.markup import escape

__all__ = ["RunOptions", "options_from_recipe", "run"]


class _Steps:
    """Wall-clock seconds of each step, for report.json's `durations_s`."""

    def __init__(self) -> None:
        self.durations: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.durations[name] = round(self.durations.get(name, 0.0) + time.perf_counter() - start, 3)


def run(options: RunOptions, recipe: Recipe) -> dict[str, Any]:
    started, clock, steps = datetime.now(timezone.utc), time.perf_counter(), _Steps()
    with steps("check"):
        task = get_task(recipe.task)
        recipe.check()
        if recipe.package.fixed_shape is not None and not task.fixed_shapes:
            raise CompressError(f"fixed-shape packages are not made for {task.name} models (a KV-cache decoder with pinned "
                                "shapes cannot generate)", "leave --fixed-shape / package.fixed_shape out; --target mobile "
                                                           "still writes the ORT-format package")
        check_target(options.out, options.force, (options.model, options.eval_data, options.calib_data))
        targets = TargetRun(recipe.targets, task.targets, task.name)
    with steps("load"):
        ctx = load_context(options, recipe, task, targets)
        check_stages(ctx)
    resume = resume_wanted(recipe)
    with staged(options.out, options.force, resume=resume) as stage:
        store = ResumeStore.open(stage, ctx, resume)
        with steps("torch_stages"):
            lines, sections = torch_stages(ctx, store)
        builder = Builder(ctx, stage, store)
        with steps("baseline"):
            baseline = builder.baseline()
        with steps("variants"):
            records = plan(ctx)
            results: list[Built | Entry] = []
            for line in lines:
                try:
                    results += [builder.build(variant, line) for variant in for_line(records, line is lines[-1])]
                finally:
                    line.close()
        store.drop_unbuilt(stage / "variants", {r.entry.name for r in results if isinstance(r, Built)})
        if (reused := store.summary()) is not None:
            sections["resume"] = reused
        with steps("measure"):
            timings = measure(ctx.evaluation, _subjects(baseline, results), recipe.validate_.rounds)
            base = _timed(ctx, baseline, timings)
            variants = [_timed(ctx, r, timings) if isinstance(r, Built) else r for r in results]
        with steps("select"):
            gates = latency_gate(variants)
            variants = [dataclasses.replace(v, gate=gates.get(v.name, {}), delta=delta(base, v, task.primary_metric))
                        for v in variants]
            selection = select(base, variants, task.primary_metric, task.higher_is_better, recipe.max_accuracy_drop,
                               target=targets.selection_target)
        if wants_package(recipe):
            with steps("package"):
                chosen = next((v for v in variants if v.name == selection.name), None)
                own = next((r.ctx for r in results if isinstance(r, Built) and r.entry.name == selection.name and r.ctx), ctx)
                section, mobile = package_selected(stage, own, chosen, baseline.scored)
                sections["package"] = section
                if mobile is not None:
                    variants = [dataclasses.replace(v, targets={**v.targets, "mobile": mobile}) if v is chosen else v
                                for v in variants]
        with steps("write"):
            report = Report(_tool(options, started, clock), task.name, task.primary_metric, task.higher_is_better,
                            recipe.max_accuracy_drop, base, [_relative(v, stage) for v in variants], selection.name,
                            selection.reason, selection.tied, environment(ctx.cpu, ctx.preset, ctx.threads), steps.durations,
                            {**ctx.data.sections, **sections, "targets": targets.summary()})
            (stage / "recipe.yaml").write_text(_resolved(ctx).to_yaml())
            data = report.to_dict()
            write_report(stage, data)
            write_cards(stage, data)
        # The write step's own duration and the total are known only now: report.json again, with them.
        data["durations_s"] = steps.durations
        data["tool"]["duration_s"] = round(time.perf_counter() - clock, 3)
        write_json(stage, data)
    return _announce(data, options.out)


def options_from_recipe(recipe: Recipe, out: Path, force: bool = False) -> RunOptions:
    """RunOptions from a recipe that names its model and data (OUT/recipe.yaml of an earlier run)."""
    if recipe.model is None or recipe.data.eval is None:
        raise CompressError("the recipe names no model or no eval data", "pass MODEL and --eval-data, or add model: and "
                                                                          "data: {eval: ...} to the recipe")
    return RunOptions(recipe.model, out, recipe.data.eval, recipe.data.text_column, recipe.data.label_column, recipe.data.calib,
                      force)


def _resolved(ctx: RunContext) -> Recipe:
    """The recipe as run: model, data paths and columns, threads and int8 preset as resolved (OUT/recipe.yaml)."""
    from edge_compress.compress.data import sibling_train_file

    options, section = ctx.options, ctx.data.sections.get("eval", {})
    calib = options.calib_data or sibling_train_file(options.eval_data)
    return ctx.recipe.resolved(options.model, options.eval_data, section.get("text_column", options.text_column),
                               section.get("label_column", options.label_column), calib, ctx.threads, ctx.preset.name)


def _subjects(baseline: Built, results: list[Built | Entry]) -> list[Subject]:
    built = [baseline, *(r for r in results if isinstance(r, Built))]
    return [Subject(b.entry.name, target, opener, b.ctx and b.ctx.evaluation) for b in built for target, opener in b.open.items()]


def _timed(ctx: RunContext, built: Built, timings: dict[tuple[str, str], Timing | str]) -> Entry:
    """The built entry with its latency on every target (a model whose timing failed on CPU becomes a failed entry)."""
    entry = built.entry
    cpu = timings.get((entry.name, "cpu"))
    if isinstance(cpu, str) or cpu is None:
        return dataclasses.replace(entry, error=f"timing failed: {cpu}")
    targets = dict(entry.targets)
    for name, result in entry.targets.items():
        timing = timings.get((entry.name, name))
        if isinstance(timing, Timing):
            speed = ctx.evaluation.timing_metrics(timing.single, timing.batch, timing.extras)
            targets[name] = dataclasses.replace(result, latency_ms=timing.single, latency_ms_batch=timing.batch,
                                                metrics={**result.metrics, **speed})
        elif isinstance(timing, str):
            targets[name] = TargetResult(error=timing)
    metrics = {**entry.metrics, **ctx.evaluation.timing_metrics(cpu.single, cpu.batch, cpu.extras)}
    return dataclasses.replace(entry, metrics=metrics, latency_ms=cpu.single, latency_ms_batch=cpu.batch, targets=targets)


def _relative(entry: Entry, stage: Path) -> Entry:
    """Variant paths point into OUT (where they will live after the rename), relative to it."""
    return dataclasses.replace(entry, path=str(Path(entry.path).relative_to(stage))) if entry.path else entry


def _tool(options: RunOptions, started: datetime, clock: float) -> Tool:
    from edge_compress.compress import __version__

    command = options.command or shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return Tool("edge-compress", __version__, command, started.isoformat(timespec="seconds"),
                round(time.perf_counter() - clock, 3))


def _announce(report: dict[str, Any], out: Path) -> dict[str, Any]:
    console.print(summary_table(report))
    if report["selected"] is None:
        warn(report["selection_reason"])
    else:
        info(f"selected {report['selected']}: {report['selection_reason']}")
    console.print(f"report: [bold]{escape(str(out / 'report.md'))}[/] (machine-readable: {escape(str(out / 'report.json'))})")
    return report
