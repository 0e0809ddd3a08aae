"""report.json as typed records: one `Entry` per model (baseline and variants), the same fields for every task.

Entries are frozen: selection, the latency gate and deltas compute new values and the
pipeline puts them in with `dataclasses.replace`, so no step changes what another
step already read.  `to_dict()` is the serialized form report.json, report.md and the
plots read (README "report.json"; a field change bumps SCHEMA_VERSION).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from edge_compress.export.timing import RoundLatency

SCHEMA_VERSION = 3

# What each figure means, written into report.json so a reader need not guess (issue 11: shipped = measured).
PROTOCOL = {
    "metrics": "one eval text (or perplexity window) at a time, batch 1, no padding: how the artefact runs",
    "metrics_batch": "padded, length-sorted batches of validate.batch_size (classifiers only; null otherwise)",
    "latency_ms": "batch 1; p50/p90/mean are medians over interleaved rounds (every model timed in each round, "
                  "one warmed block per model), spread = min/max of the rounds' p50",
    "latency_ms_batch": "the larger batch, same rounds",
    "selection": "fastest batch-1 p50 within the accuracy budget; variants whose latency spreads overlap the "
                 "fastest's are tied and the tie goes to the better metric (a change within noise counts as none), "
                 "then the smaller size",
    "noise": "paired bootstrap of the primary-metric change against the baseline on the same eval items (texts, or "
             "perplexity windows), 95 % percentile interval; classifiers add the flip counts and an exact two-sided "
             "sign test on them; 'within noise' = the interval contains 0",
}


def _latency(value: RoundLatency | None) -> dict[str, Any] | None:
    return value.as_dict() if value is not None else None


@dataclass(frozen=True)
class TargetResult:
    """One model's results on one deployment target (CPU: the entry's own top-level fields)."""
    provider: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    latency_ms: RoundLatency | None = None
    latency_ms_batch: RoundLatency | None = None
    peak_memory_mb: float | None = None
    error: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"error": self.error}
        data = {"provider": self.provider, "metrics": self.metrics, "latency_ms": _latency(self.latency_ms),
                "latency_ms_batch": _latency(self.latency_ms_batch), "peak_memory_mb": self.peak_memory_mb, "error": None}
        return {**data, "note": self.note} if self.note else data


@dataclass(frozen=True)
class Delta:
    metric: float
    latency_ratio: float
    speedup: float
    speedup_batch: float | None
    size_ratio: float
    compression: float


@dataclass(frozen=True)
class Gate:
    passed: bool
    p50_ms: float
    fp32_variant: str
    fp32_p50_ms: float


@dataclass(frozen=True)
class Noise:
    """How far the primary-metric change against the baseline could be chance (compress.report.noise)."""
    method: str
    delta: float                   # variant - baseline, metric units (points for accuracy)
    low: float                     # 95 % paired-bootstrap interval of `delta`
    high: float
    resamples: int
    seed: int
    items: int                     # paired eval items resampled (texts, or perplexity windows)
    gained: int | None = None      # classifiers: texts the variant gets right and the baseline wrong
    lost: int | None = None        # ... and the other way round
    p_value: float | None = None   # exact two-sided sign test on gained vs lost

    @property
    def within_noise(self) -> bool:
        return self.low <= 0 <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "within_noise": self.within_noise}


@dataclass(frozen=True)
class SizeBreakdown:
    """Where the bytes sit: initializer bytes per part of the architecture (compress.report.size)."""
    parts: dict[str, int]          # part -> bytes, in display order; sums to initializer_bytes
    initializer_bytes: int
    file_bytes: int                # on disk (the rest is graph structure and metadata)
    family: str                    # which table mapped names to parts

    def to_dict(self) -> dict[str, Any]:
        total = self.initializer_bytes or 1
        return {"family": self.family, "initializer_bytes": self.initializer_bytes, "file_bytes": self.file_bytes,
                "parts": {k: {"bytes": b, "share": round(b / total, 4)} for k, b in self.parts.items()}}


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Flip:
    """One eval item whose output changed against the float model (a flipped label, or a diverging continuation)."""
    index: int                     # position in the eval set (classifiers) or in the prompt list (LMs)
    text: str
    baseline: str
    variant: str
    label: str | None = None       # classifiers: the true label
    first_difference: int | None = None   # LMs: the first generated token that differs


@dataclass(frozen=True)
class Analysis:
    """What a model got wrong: per-class metrics and confusion (classifiers), flipped items against the float model."""
    labels: list[str] = field(default_factory=list)
    per_class: list[ClassMetrics] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)    # rows: true label, columns: predicted
    flips: list[Flip] = field(default_factory=list)              # the first `report.examples`
    flip_count: int = 0
    compared: int = 0                                            # items compared with the float model

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Entry:
    name: str
    path: str | None
    format: str                                    # "pytorch" | "onnx"
    precision: str
    provider: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    metrics_batch: dict[str, float] | None = None
    latency_ms: RoundLatency | None = None
    latency_ms_batch: RoundLatency | None = None
    peak_memory_mb: float | None = None
    size_bytes: int | None = None
    params: int | None = None
    graph: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, TargetResult] = field(default_factory=dict)   # non-CPU targets; "cpu" is added when serialized
    gate: dict[str, Gate] = field(default_factory=dict)
    delta: Delta | None = None
    noise: Noise | None = None
    size_breakdown: SizeBreakdown | None = None
    analysis: Analysis | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def cpu(self) -> TargetResult:
        return TargetResult(self.provider, self.metrics, self.latency_ms, self.latency_ms_batch, self.peak_memory_mb)

    def on(self, target: str) -> TargetResult | None:
        """Results on `target` when it was measured there and worked (timed), else None."""
        if not self.ok:
            return None
        result = self.cpu() if target == "cpu" else self.targets.get(target)
        return result if result is not None and result.error is None and result.latency_ms is not None else None

    def to_dict(self) -> dict[str, Any]:
        if not self.ok:
            return {"name": self.name, "path": None, "format": self.format, "precision": self.precision,
                    "settings": self.settings, "error": self.error}
        data = {"name": self.name, "path": self.path, "format": self.format, "precision": self.precision,
                "provider": self.provider, "metrics": self.metrics, "metrics_batch": self.metrics_batch,
                "latency_ms": _latency(self.latency_ms), "latency_ms_batch": _latency(self.latency_ms_batch),
                "peak_memory_mb": self.peak_memory_mb, "size_bytes": self.size_bytes, "params": self.params,
                "graph": self.graph, "settings": self.settings,
                "targets": {"cpu": self.cpu().to_dict(), **{k: v.to_dict() for k, v in self.targets.items()}},
                "error": None}
        if self.gate:
            data["gate"] = {k: dataclasses.asdict(g) for k, g in self.gate.items()}
        if self.delta is not None:
            data["delta"] = dataclasses.asdict(self.delta)
        data["noise"] = self.noise.to_dict() if self.noise is not None else None
        data["size_breakdown"] = self.size_breakdown.to_dict() if self.size_breakdown is not None else None
        data["analysis"] = self.analysis.to_dict() if self.analysis is not None else None
        return data


@dataclass(frozen=True)
class Tool:
    name: str
    version: str
    command: str
    started: str        # ISO 8601, UTC
    duration_s: float


@dataclass(frozen=True)
class Report:
    tool: Tool
    task: str
    metric: str
    higher_is_better: bool
    max_accuracy_drop: float
    baseline: Entry
    variants: list[Entry]
    selected: str | None
    selection_reason: str
    tied: list[str]
    environment: dict[str, Any]
    durations_s: dict[str, float]
    sections: dict[str, Any] = field(default_factory=dict)   # eval, calibration, pruning, targets, package: per run

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "tool": dataclasses.asdict(self.tool), "task": self.task,
                "metric": self.metric, "higher_is_better": self.higher_is_better, "max_accuracy_drop": self.max_accuracy_drop,
                "protocol": PROTOCOL, "baseline": self.baseline.to_dict(), "variants": [v.to_dict() for v in self.variants],
                "selected": self.selected, "selection_reason": self.selection_reason, "tied": self.tied,
                **self.sections, "durations_s": self.durations_s, "environment": self.environment}
