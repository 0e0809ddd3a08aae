"""Selection, the latency gate and deltas: pure functions of typed entries that return new values.

Selection: the fastest variant (batch-1 p50 on the selection target) whose primary-metric drop is within the
budget, leaving out quantized variants that fail the latency gate there.  Timings are medians over
interleaved rounds with a measured spread, so "fastest" is only meaningful beyond that spread: every variant
whose spread overlaps the fastest one's is tied with it, and a tie goes to the better metric, then the
smaller size (issue 11: int8 dynamic and static within 4 % of each other flipped run to run).

Latency gate: int8 is not always faster (no VNNI/dot-product instructions, short sequences, Q/DQ pairs
that do not fuse), so each int8/int4 variant is compared, per target, with the fastest fp32 ONNX variant
measured there; one that is not faster is not worth its accuracy risk and is not selected on that target.
"""
from __future__ import annotations

from dataclasses import dataclass

from edge_compress.compress.report.schema import Delta, Entry, Gate

GATED = ("int8", "int4")


@dataclass(frozen=True)
class Selection:
    name: str | None
    reason: str
    tied: list[str]


def latency_gate(variants: list[Entry]) -> dict[str, dict[str, Gate]]:
    """{variant name: {target: Gate}} for every int8/int4 variant on every target it was timed on."""
    targets = sorted({"cpu", *(t for v in variants for t in v.targets)})
    gates: dict[str, dict[str, Gate]] = {}
    for target in targets:
        fp32 = [(r.latency_ms.p50, v.name) for v in variants
                if v.precision == "fp32" and v.format == "onnx" and (r := v.on(target)) is not None]
        if not fp32:
            continue
        fastest_ms, fastest = min(fp32)
        for v in variants:
            result = v.on(target)
            if v.precision in GATED and result is not None:
                p50 = result.latency_ms.p50
                gates.setdefault(v.name, {})[target] = Gate(p50 < fastest_ms, round(p50, 4), fastest, round(fastest_ms, 4))
    return gates


def gated_out(entry: Entry, target: str) -> bool:
    gate = entry.gate.get(target)
    return gate is not None and not gate.passed


def drop(value: float, base: float, higher_is_better: bool) -> float:
    return base - value if higher_is_better else value - base


def select(baseline: Entry, variants: list[Entry], metric: str, higher_is_better: bool, budget: float,
           target: str = "cpu") -> Selection:
    """`variants` carry their gates already (see `latency_gate`)."""
    base = baseline.metrics[metric]
    measured = [(v, r) for v in variants if (r := v.on(target)) is not None]
    within = [(v, r) for v, r in measured if drop(r.metrics[metric], base, higher_is_better) <= budget + 1e-9]
    ok = [(v, r) for v, r in within if not gated_out(v, target)]
    where = "" if target == "cpu" else f" on {target}"
    failed = len(within) - len(ok)
    gated = f"; {failed} quantized variant(s) within budget failed the latency gate" if failed else ""
    if not ok:
        return Selection(None, f"no variant stays within {budget:g} points of the baseline's {metric} ({base:.2f})"
                               f"{where}{gated}; all results are kept", [])
    _, fastest_result = min(ok, key=lambda vr: vr[1].latency_ms.p50)
    ceiling = fastest_result.latency_ms.spread[1]
    tied = [(v, r) for v, r in ok if r.latency_ms.spread[0] <= ceiling]
    sign = 1 if higher_is_better else -1
    best, _ = min(tied, key=lambda vr: (-sign * judged(vr[0], vr[1], base, metric, target), vr[0].size_bytes or 0,
                                                  vr[1].latency_ms.p50))
    lead = "tied for fastest" if len(tied) > 1 else "fastest"  # the slowest of the tied ones may win on accuracy/size
    reason = f"{lead} at batch 1{where} among {len(ok)} variants within {budget:g} points of the baseline's {metric}{gated}"
    if len(tied) > 1:
        others = ", ".join(v.name for v, _ in tied if v is not best)
        reason += (f"; tied within the measured latency spread with {others} "
                   f"(rounds' p50 up to {ceiling:.3g} ms), so the better {metric} (a change within noise counts as none), "
                   "then the smaller size, decided")
    if best.noise is not None and target == "cpu":
        n = best.noise
        if n.low == n.high == 0:
            reason += f"; its {metric} is the baseline's on every eval item"
        else:
            reason += (f"; its {metric} change against the baseline is {'within noise' if n.within_noise else 'beyond noise'} "
                       f"({n.delta:+.2f}, 95 % interval [{n.low:+.2f}, {n.high:+.2f}])")
    return Selection(best.name, reason, [v.name for v, _ in tied])


def judged(entry: Entry, result, base: float, metric: str, target: str) -> float:
    """The metric a tie is decided on: the baseline's own value when the entry's change is within noise (its paired
    bootstrap interval holds 0), so two variants that differ by chance are not ranked by it.  Noise is measured on the
    CPU eval, so other targets use their measured value."""
    if entry.noise is not None and entry.noise.within_noise and target == "cpu":
        return base
    return result.metrics[metric]


def delta(baseline: Entry, entry: Entry, metric: str) -> Delta | None:
    if not entry.ok or entry.latency_ms is None or baseline.latency_ms is None:
        return None
    batch = (round(baseline.latency_ms_batch.p50 / entry.latency_ms_batch.p50, 3)
             if baseline.latency_ms_batch is not None and entry.latency_ms_batch is not None else None)
    return Delta(metric=round(entry.metrics[metric] - baseline.metrics[metric], 4),
                 latency_ratio=round(entry.latency_ms.p50 / baseline.latency_ms.p50, 4),
                 speedup=round(baseline.latency_ms.p50 / entry.latency_ms.p50, 3), speedup_batch=batch,
                 size_ratio=round(entry.size_bytes / baseline.size_bytes, 4),
                 compression=round(baseline.size_bytes / entry.size_bytes, 3))
