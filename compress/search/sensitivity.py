"""Per-unit sensitivity: how much the proxy (and, when asked, the task metric) moves because of one unit.

Two directions, both n + 1 builds for n units:
- `only` (default): only that unit at the low precision, every other unit at the fallback (float for int8,
  8 bits for int4). Score = proxy(candidate) - proxy(base with no unit low). Default because each score
  is measured on an otherwise clean model: it is that unit's own error, not mixed with the others', so
  scores compare across units and the order does not depend on which units happen to be quantized.
- `loo` (leave one out): every unit low except that one. Score = proxy(all low) - proxy(all low but that
  unit), the gain from keeping it. Closer to the end state when most units end up low (it sees
  interactions), but each score is a small difference of two large, noisy numbers: use it as a check.
Either way a higher score means more sensitive; the search quantizes the lowest scores first.
For the LM's int4 the other units sit at 8 bits, not float: the decision per unit is 4 vs 8 bits, so the score is
the cost of that step in the model the search actually builds.

Units run in parallel on the executor (default: a local process pool, so `metric` must be picklable; pass
`InlineExecutor()` for closures); finished rows go to the cache one by one (compress.search.cache).
"""
from __future__ import annotations

import contextlib
import hashlib
import pickle
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import Executor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from edge_compress.compress.search import proxy
from edge_compress.compress.search.cache import Cache, fingerprint
from edge_compress.compress.search.executors import make_executor
from edge_compress.compress.search.schemes import Scheme

Direction = Literal["only", "loo"]
BASE = "<base>"  # cache row of the reference candidate (no unit low for `only`, all units low for `loo`)


@dataclass(frozen=True)
class UnitScore:
    unit: str
    kl: float                   # proxy of the candidate that measured this unit (nats)
    score: float                # sensitivity: higher = the unit hurts more at the low precision
    metric: float | None = None  # the caller's task metric on that candidate, when asked


@dataclass(frozen=True)
class Sensitivity:
    scheme: dict[str, Any]
    direction: Direction
    base_kl: float
    base_metric: float | None
    rows: list[UnitScore]       # most sensitive first
    proxy_check: float | None = None  # with a metric: Spearman correlation of the scores with |metric change|

    def tolerant_first(self) -> list[str]:
        """The order the search quantizes units in."""
        return [r.unit for r in reversed(self.rows)]

    def as_dict(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "direction": self.direction, "base_kl": self.base_kl, "base_metric": self.base_metric,
                "rows": [asdict(r) for r in self.rows], "proxy_check": self.proxy_check}


@dataclass(frozen=True)
class _Job:
    """One candidate to build and score in a worker (everything it needs, picklable)."""
    scheme: Scheme
    src: Path
    low: tuple[str, ...]
    feeds: list[dict[str, np.ndarray]]
    output: str
    reference: list[Path]
    metric: Callable[[Path], float] | None


def _score(job: _Job) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sensitivity-") as tmp:
        path = job.scheme.build(job.src, Path(tmp) / "model.onnx", job.low)
        row = {"kl": proxy.kl(path, job.feeds, job.output, job.reference)}
        row["metric"] = job.metric(path) if job.metric is not None else None
    return row


def sensitivity(src: Path, scheme: Scheme, feeds: list[dict[str, np.ndarray]], output: str = "logits",
                direction: Direction = "only", metric: Callable[[Path], float] | None = None, cache: Path | None = None,
                executor: Executor | None = None, units: list[str] | None = None) -> Sensitivity:
    """Score every unit of the float graph `src` (or `units`) under `scheme` on `feeds`; see the module docstring."""
    model = onnx.load(str(src), load_external_data=False)
    units = units if units is not None else scheme.units(model)
    setting = {**scheme.settings(), "direction": direction, "output": output, "units": units, "metric": _identity(metric)}
    key = fingerprint(src, feeds, setting)
    store = Cache(cache) if cache is not None else None
    rows = store.rows(key) if store is not None else {}
    todo = [u for u in [BASE, *units] if u not in rows]
    if todo:
        work = Path(tempfile.mkdtemp(prefix="sensitivity-ref-"))
        try:
            reference = proxy.save_reference(src, feeds, output, work)
            with contextlib.ExitStack() as stack:
                if executor is None:  # default: a local process pool, closed when done
                    executor = stack.enter_context(make_executor("process"))
                jobs = {executor.submit(_score, _Job(scheme, src, _low(u, units, direction), feeds, output, reference, metric)):
                        u for u in todo}
                for future in as_completed(jobs):
                    rows[jobs[future]] = future.result()
                    if store is not None:
                        store.put(key, jobs[future], rows[jobs[future]])
        finally:
            shutil.rmtree(work, ignore_errors=True)
    base = rows[BASE]
    sign = 1.0 if direction == "only" else -1.0
    scored = [UnitScore(u, rows[u]["kl"], sign * (rows[u]["kl"] - base["kl"]), rows[u]["metric"]) for u in units]
    scored.sort(key=lambda r: (-r.score, r.unit))
    check = None
    if metric is not None and len(scored) > 2:
        check = spearman([r.score for r in scored], [abs(r.metric - base["metric"]) for r in scored])
    return Sensitivity(scheme.settings(), direction, base["kl"], base["metric"], scored, check)


def spearman(a: list[float], b: list[float]) -> float | None:
    """Rank correlation: does the proxy order units the way the real metric does? (None when either is constant.)"""
    ra, rb = (np.argsort(np.argsort(x, kind="stable"), kind="stable").astype(float) for x in (a, b))
    if ra.std() == 0 or rb.std() == 0 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(np.corrcoef(ra, rb)[0, 1])


def _identity(metric: Callable[[Path], float] | None) -> str | None:
    """What identifies the metric in the cache key: its pickled bytes (so a measure over other data is another key),
    else its qualified name (a closure cannot be pickled: then the caller must vary the cache file)."""
    if metric is None:
        return None
    try:
        return hashlib.sha256(pickle.dumps(metric)).hexdigest()
    except (pickle.PicklingError, AttributeError, TypeError):
        return getattr(metric, "__qualname__", repr(metric))


def _low(unit: str, units: list[str], direction: Direction) -> tuple[str, ...]:
    """The units at the low precision in the candidate that measures `unit`."""
    if direction == "only":
        return () if unit == BASE else (unit,)
    return tuple(units) if unit == BASE else tuple(u for u in units if u != unit)
