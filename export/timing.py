"""Interleaved timing rounds: every model timed in every round, one warmed block per model per round.

Why rounds and not one pass per model: on a shared 2-core machine the same model's
p50 moved by +-20 % between runs of one command (issue 11), so one model timed after
another measures the neighbours as much as the model.  Taking turns spreads that
noise over all models alike; the spread of the rounds' p50 says how large it was.
Why one block per model and not one call per model in turn: alternating single calls
measures cache thrash between two models, not either of them.

A subject is opened once per round (a session may be recreated: big models need not
all be resident at once) and its block returns named lists of milliseconds, e.g.
{"single": [...], "batch": [...]}; each name is summarised on its own.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

Samples = dict[str, list[float]]
Block = Callable[[], Samples]


@dataclass(frozen=True)
class RoundLatency:
    """Milliseconds per call: p50/p90/mean are medians over rounds of each round's figure;
    spread = (min, max) of the rounds' p50."""
    p50: float
    p90: float
    mean: float
    batch_size: int
    seq_len: float
    runs: int                      # timed calls per round
    round_p50: tuple[float, ...]

    @property
    def spread(self) -> tuple[float, float]:
        return min(self.round_p50), max(self.round_p50)

    @property
    def rounds(self) -> int:
        return len(self.round_p50)

    def as_dict(self) -> dict[str, Any]:
        low, high = self.spread
        return {"p50": round(self.p50, 4), "p90": round(self.p90, 4), "mean": round(self.mean, 4),
                "batch_size": self.batch_size, "seq_len": round(self.seq_len, 1), "runs": self.runs,
                "rounds": self.rounds, "round_p50": [round(p, 4) for p in self.round_p50],
                "spread": [round(low, 4), round(high, 4)]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoundLatency:
        return cls(data["p50"], data["p90"], data["mean"], data["batch_size"], data["seq_len"], data["runs"],
                   tuple(data.get("round_p50") or (data["p50"],)))


def time_calls(call: Callable[[Any], Any], inputs: Sequence[Any], warmup: int) -> list[float]:
    """`warmup` untimed calls, then one timed call per input (ms, perf_counter)."""
    if not inputs:
        raise ValueError("no inputs to time")
    for i in range(warmup):
        call(inputs[i % len(inputs)])
    times = []
    for x in inputs:
        start = time.perf_counter()
        call(x)
        times.append((time.perf_counter() - start) * 1000.0)
    return times


def round_robin(subjects: dict[Hashable, Callable[[], Block]], rounds: int,
                on_round: Callable[[int], None] | None = None) -> dict[Hashable, list[Samples]]:
    """Per subject, the samples of each round; in each round every subject is opened, timed once, and released."""
    if rounds < 1:
        raise ValueError("at least one round")
    results: dict[Hashable, list[Samples]] = {key: [] for key in subjects}
    for r in range(rounds):
        for key, open_block in subjects.items():
            block = open_block()
            results[key].append(block())
            del block
        if on_round is not None:
            on_round(r)
    return results


def summarize(rounds: list[list[float]], batch_size: int, seq_len: float) -> RoundLatency:
    """One RoundLatency from the per-round sample lists of one subject."""
    p50s = [statistics.median(r) for r in rounds]
    p90s = [statistics.quantiles(r, n=10)[8] if len(r) > 1 else r[0] for r in rounds]
    means = [statistics.fmean(r) for r in rounds]
    return RoundLatency(statistics.median(p50s), statistics.median(p90s), statistics.median(means), batch_size, seq_len,
                        min(len(r) for r in rounds), tuple(p50s))
