"""Search the cut within the accuracy budget: greedy by sensitivity, every step measured for real, then bisection.

The units are ordered most tolerant first (compress.search.sensitivity). A candidate is a cut `k`: the first
`k` units at the low precision, the rest at the fallback (float, or 8 bits for the LM's int4). Greedy phase:
cuts 0, s, 2s, ... n (s = n / `steps`), measured `parallel` at a time with the caller's `measure` -- the
real metric, not the proxy -- until the first cut over budget. Refine: bisection (with `parallel` probes per
round) between the largest passing cut and that first failing one. The proxy only orders; every decision
is a measurement.

Why this shape: it stays within a trial budget a user can predict (about steps + log2(n / steps) trials),
whereas the accuracy-aware tuners it replaces ran 100 trials for 38 hours and saved nothing
(neural-compressor#2261) or stopped at the first passing config (#1617). The winner is chosen among
*every* trial within budget by the objective (size, latency, or their product), so a non-monotone metric
cannot hide a better cut that was measured.

Always a model on disk (Olive#1439 finished without one): whenever a trial within budget beats the best so
far, `OUT/best.onnx` is replaced by it -- written under a temporary name, its record (settings, metrics,
why it won) embedded in the model's metadata, then renamed over the old one, so a kill at any moment
leaves either the previous best or the new one, each with its own record. `OUT/search.json` (every trial,
the Pareto front, the reason) is rewritten the same way after every trial; when the two disagree after a
kill, the record inside best.onnx is the one that matches the model.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Executor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import onnx
from edge_compress.compress.errors import CompressError
from edge_compress.compress.report.noise import change_interval
from edge_compress.compress.report.select import drop
from edge_compress.compress.search import pareto
from edge_compress.compress.search.executors import make_executor
from edge_compress.compress.search.files import write_json
from edge_compress.compress.search.schemes import Scheme
from edge_compress.export.hf_manifest import model_files
from edge_compress.export.onnx_io import save_model

Objective = Literal["size", "latency", "both"]
RECORD_KEY = "edge_compress.search"  # metadata_props key of the record inside best.onnx
BEST = "best.onnx"
# What the objective minimises over the trials within budget; "both": size x latency, i.e. the product of
# the ratios to any common reference, so neither unit dominates.
OBJECTIVES: dict[str, Callable[[Mapping[str, Any]], float]] = {
    "size": lambda t: t["size_bytes"],
    "latency": lambda t: t["latency_ms"],
    "both": lambda t: t["size_bytes"] * t["latency_ms"],
}
NEEDS_LATENCY = ("latency", "both")


@dataclass(frozen=True)
class Budget:
    """How much of the metric a candidate may lose, and how that is judged.

    With `baseline_items` (the float model's per-item scores, from a measure that returns `items`) a candidate
    is within budget only when the paired bootstrap's 95 % upper bound of its drop is: a cut that fits only by
    the luck of the search data is over budget. At stop 20 the point estimate on 512 tokens let a cut through
    that then cost +7.85 % perplexity on the eval text against a 5 % budget. Without items: the point estimate."""
    baseline: float            # the float model's metric
    max_drop: float            # in the metric's units (points), as `--max-accuracy-drop`
    higher_is_better: bool = True
    baseline_items: Mapping[str, Sequence[float]] | None = field(default=None, repr=False, compare=False)

    def drop(self, metric: float) -> float:
        return drop(metric, self.baseline, self.higher_is_better)

    def upper_drop(self, items: Mapping[str, Sequence[float]] | None) -> float | None:
        """The 95 % upper bound of the drop from per-item scores (None when either side has none)."""
        if not items or not self.baseline_items:
            return None
        interval = change_interval(items, self.baseline_items)
        return -interval.low if self.higher_is_better else interval.high

    def within(self, metric: float, items: Mapping[str, Sequence[float]] | None = None) -> bool:
        upper = self.upper_drop(items)
        return self.allows(self.drop(metric) if upper is None else upper)

    def allows(self, judged_drop: float) -> bool:
        return judged_drop <= self.max_drop + 1e-12

    def as_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline, "max_drop": self.max_drop, "higher_is_better": self.higher_is_better,
                "judge": "upper" if self.baseline_items else "point"}


@dataclass(frozen=True)
class Candidate:
    """What `measure` gets: a complete model and what it is."""
    trial: int
    cut: int | None            # the first `cut` units of the order are at the low precision (None: a seed)
    low: tuple[str, ...]
    path: Path


# measure(candidate) -> {"metric": float, "latency_ms": float (for latency/both), "size_bytes": int (default: files),
#                        "items": per-item scores for the bootstrap judge (optional; see Budget)}
Measure = Callable[[Candidate], Mapping[str, float]]


@dataclass
class SearchResult:
    trials: list[dict[str, Any]]
    best: dict[str, Any] | None
    reason: str
    front: list[int]           # trial numbers on the Pareto front
    stopped: str               # converged | max_trials | max_seconds | no cut within budget
    path: Path | None          # OUT/best.onnx, or None when no trial was within budget

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "path": str(self.path) if self.path else None}


@dataclass
class _State:
    """The search so far; written to OUT/search.json after every trial."""
    out: Path
    header: dict[str, Any]
    budget: Budget
    objective: str
    trials: list[dict[str, Any]] = field(default_factory=list)
    best: dict[str, Any] | None = None

    def passed(self, cut: int) -> bool | None:
        rows = [t for t in self.trials if t["cut"] == cut and t["error"] is None]
        return rows[0]["within"] if rows else None

    def tested(self) -> set[int]:
        """Cuts measured (or attempted) so far; seeds have no cut."""
        return {t["cut"] for t in self.trials if t["cut"] is not None}


def _row(number: int, cut: int | None, low: tuple[str, ...], error: str | None = None) -> dict[str, Any]:
    return {"trial": number, "cut": cut, "low": list(low), "metric": None, "size_bytes": None, "latency_ms": None,
            "error": error, "path": None, "items": None, "seconds": None}


def _trial(scheme: Scheme, src: Path, low: tuple[str, ...], cut: int | None, number: int, folder: Path, measure: Measure) -> dict[str, Any]:
    """Build one candidate and measure it (runs in a worker); a failure is a trial result, not a crash."""
    start = time.perf_counter()
    row = _row(number, cut, low)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = scheme.build(src, folder / "model.onnx", low)
        metrics = dict(measure(Candidate(number, cut, low, path)))
        row.update(metric=float(metrics["metric"]), latency_ms=metrics.get("latency_ms"),
                   size_bytes=int(metrics.get("size_bytes") or sum(f.stat().st_size for f in model_files(path))), path=str(path),
                   items=metrics.get("items"))
    except Exception as err:  # noqa: BLE001 -- recorded with the trial; the search goes on with the others
        row["error"] = f"{type(err).__name__}: {err}"
    row["seconds"] = round(time.perf_counter() - start, 3)
    return row


def search(src: Path, scheme: Scheme, order: list[str], measure: Measure, budget: Budget, out: Path,
           objective: Objective = "size", max_trials: int = 24, max_seconds: float | None = None, steps: int = 8,
           executor: Executor | None = None, parallel: int | None = None, seeds: Sequence[Collection[str]] = ()) -> SearchResult:
    """Find the cut of `order` (units, most tolerant first) that best serves `objective` within `budget`.

    `executor`: where trials run (default: a local process pool, so `measure` must be picklable; pass
    `InlineExecutor()` for closures); `parallel`: trials per round (default: the executor's workers).

    `seeds`: further candidates (sets of low units) measured first, e.g. a hand-tuned keep-8-bit list: they compete
    for the best like any trial, so the search never returns worse than a known-good setting it was given."""
    if objective not in OBJECTIVES:
        raise CompressError(f"unknown search objective '{objective}'", f"use one of {', '.join(OBJECTIVES)}")
    if executor is None:  # default: a local process pool (candidates are independent), closed when the search ends
        with make_executor("process") as pool:
            return search(src, scheme, order, measure, budget, out, objective, max_trials, max_seconds, steps, pool, parallel,
                          seeds)
    parallel = max(1, parallel or getattr(executor, "_max_workers", 1))
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "trials", ignore_errors=True)  # leftovers of a killed run; best.onnx is kept until beaten
    state = _State(out, {"scheme": scheme.settings(), "order": order, "objective": objective, "budget": budget.as_dict(),
                         "limits": {"max_trials": max_trials, "max_seconds": max_seconds, "steps": steps}}, budget, objective)
    start, n = time.monotonic(), len(order)

    def run(cuts: list[int | None], phase: str, lows: list[tuple[str, ...]] | None = None) -> str | None:
        """Measure cuts of the order (or, for seeds, cut None with `lows`); the reason to stop when a limit is reached first."""
        if len(state.trials) >= max_trials:
            return "max_trials"
        if max_seconds is not None and time.monotonic() - start > max_seconds:
            return "max_seconds"
        stopped = None
        lows = lows or [tuple(order[:c]) for c in cuts]
        jobs = [(c, low) for c, low in zip(cuts, lows) if c is None or c not in state.tested()][:max_trials - len(state.trials)]
        futures = {}
        for cut, low in jobs:
            number = len(state.trials) + len(futures)
            try:
                future = executor.submit(_trial, scheme, src, low, cut, number, out / "trials" / str(number), measure)
            except BrokenExecutor as err:  # a worker died earlier (e.g. killed for memory): nothing more can run
                stopped = f"executor failed: {err}"
                break
            futures[future] = (number, cut, low)
        for future in as_completed(futures):
            try:
                row = future.result()
            except Exception as err:  # noqa: BLE001 -- the worker itself died: a failed trial, the best so far stays
                row = _row(*futures[future], error=f"{type(err).__name__}: {err}")
            _record(state, {**row, "phase": phase})
        return stopped

    stopped = None
    for i in range(0, len(seeds), parallel):
        chunk = [tuple(u for u in order if u in set(seed)) for seed in seeds[i:i + parallel]]
        stopped = stopped or run([None] * len(chunk), "seed", chunk)

    step = max(1, math.ceil(n / max(1, steps)))
    grid = sorted({*range(0, n, step), n})
    lo, hi = None, None
    for i in range(0, len(grid), parallel):  # greedy: the next `parallel` steps at a time, up to the first failure
        if stopped:
            break
        stopped = run(grid[i:i + parallel], "greedy")
        failing = [c for c in grid[:i + parallel] if state.passed(c) is False]
        if stopped or failing:
            hi = failing[0] if failing else None
            break
    passing = [c for c in grid if state.passed(c) and (hi is None or c < hi)]
    lo = max(passing) if passing else None
    if not stopped and lo is None:
        stopped = "no cut within budget"
    while not stopped and hi is not None:  # refine: bisect (lo passes, hi fails) with `parallel` probes per round
        untested = [c for c in range(lo + 1, hi) if c not in state.tested()]  # an errored cut is not probed twice
        if not untested:
            break
        stopped = run(sorted({untested[(j * len(untested)) // (parallel + 1)] for j in range(1, parallel + 1)}), "refine")
        lo = max(c for c in state.tested() if lo <= c < hi and state.passed(c))
        hi = min((c for c in state.tested() if lo < c <= hi and state.passed(c) is False), default=hi)
    shutil.rmtree(out / "trials", ignore_errors=True)
    reason = _write_json(state, stopped or "converged")
    best_path = out / BEST if state.best is not None else None
    return SearchResult(state.trials, state.best, reason, _front(state), stopped or "converged", best_path)


def _record(state: _State, row: dict[str, Any]) -> None:
    """Keep the trial; make it the best on disk if it is within budget and beats the best so far."""
    path, items = row.pop("path"), row.pop("items", None)  # items judge the trial; search.json keeps the bound
    if row["error"] is None:
        if state.objective in NEEDS_LATENCY and row["latency_ms"] is None:
            raise CompressError(f"the search objective '{state.objective}' needs latency, but measure() returned none",
                                "return latency_ms from the measure callable, or use objective size")
        row["drop"] = state.budget.drop(row["metric"])
        row["drop_upper"] = state.budget.upper_drop(items)  # one bootstrap per trial, judged below
        row["within"] = state.budget.allows(row["drop"] if row["drop_upper"] is None else row["drop_upper"])
    else:
        row["drop"], row["drop_upper"], row["within"] = None, None, False
    state.trials.append(row)
    if row["within"] and (state.best is None or _rank(state, row) < _rank(state, state.best)):
        state.best = row
        _write_best(state, Path(path))
    if path:
        shutil.rmtree(Path(path).parent, ignore_errors=True)
    _write_json(state, "running")


def _rank(state: _State, row: Mapping[str, Any]) -> tuple[float, float, int]:
    """Objective first; then the smaller drop; then the earlier trial (deterministic)."""
    return OBJECTIVES[state.objective](row), row["drop"], row["trial"]


def _reason(state: _State) -> str:
    best, within = state.best, [t for t in state.trials if t["within"]]
    if best is None:
        return (f"no trial within the budget ({state.budget.max_drop:g} allowed; smallest drop "
                f"{min((t['drop'] for t in state.trials if t['drop'] is not None), default=float('nan')):.4g})")
    over = [t for t in state.trials if t["error"] is None and not t["within"]
            and OBJECTIVES[state.objective](t) < OBJECTIVES[state.objective](best)]
    what = "a seed" if best["cut"] is None else f"cut {best['cut']}"
    text = (f"trial {best['trial']} ({what}: {len(best['low'])} of {len(state.header['order'])} units low) has the lowest "
            f"{state.objective} ({_objective_text(state.objective, best)}) of the {len(within)} trials within the budget "
            f"({_drop_text(best)} <= {state.budget.max_drop:g})")
    if over:
        text += "; better-" + state.objective + " trials over budget: " + ", ".join(
            f"{t['trial']} ({_drop_text(t)})" for t in over)
    return text


def _drop_text(row: Mapping[str, Any]) -> str:
    bound = row.get("drop_upper")
    return f"drop {row['drop']:.4g}" + ("" if bound is None else f", 95 % upper bound {bound:.4g}")


def _objective_text(objective: str, row: Mapping[str, Any]) -> str:
    size = f"{row['size_bytes'] / 1e6:.3f} MB"
    if objective == "size":
        return size
    latency = f"{row['latency_ms']:.3f} ms"
    return latency if objective == "latency" else f"{size} x {latency}"


def _front(state: _State) -> list[int]:
    costs = ["size_bytes", "latency_ms"] if all(t["latency_ms"] is not None for t in state.trials if t["error"] is None) \
        else ["size_bytes"]
    return [state.trials[i]["trial"] for i in pareto.front(state.trials, costs, "metric", state.budget.higher_is_better)]


def _record_of_best(state: _State) -> dict[str, Any]:
    best = state.best
    fallback = [u for u in state.header["order"] if u not in set(best["low"])]
    return {**state.header, "trial": best, "fallback": fallback, "reason": _reason(state)}


def _write_best(state: _State, trial_model: Path) -> None:
    """Replace OUT/best.onnx atomically by `trial_model` carrying its record (see the module docstring)."""
    model = onnx.load(str(trial_model), load_external_data=True)
    kept = [(p.key, p.value) for p in model.metadata_props if p.key != RECORD_KEY]
    del model.metadata_props[:]
    for key, value in kept:
        model.metadata_props.add(key=key, value=value)
    model.metadata_props.add(key=RECORD_KEY, value=json.dumps(_record_of_best(state), default=str))
    tmp = state.out / f".best-{state.best['trial']}.onnx"  # its external data, if any, is named after it: unique per trial
    save_model(model, tmp)
    os.replace(tmp, state.out / BEST)
    keep = f"{tmp.name}_data"
    for stale in state.out.glob(".best-*.onnx_data"):
        if stale.name != keep:
            stale.unlink(missing_ok=True)


def _write_json(state: _State, stopped: str) -> str:
    reason = _reason(state)
    write_json(state.out / "search.json", {**state.header, "trials": state.trials, "best": state.best, "reason": reason,
                                           "pareto": _front(state), "stopped": stopped})
    return reason


def read_best(out: Path) -> tuple[Path, dict[str, Any]]:
    """OUT/best.onnx and the record it carries."""
    path = out / BEST
    model = onnx.load(str(path), load_external_data=False)
    record = next(p.value for p in model.metadata_props if p.key == RECORD_KEY)
    return path, json.loads(record)
