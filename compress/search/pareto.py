"""The non-dominated trials: no other trial is at least as good on every cost and on the metric, and better on one.

Costs are lower-is-better (bytes, milliseconds); the metric's direction is given. A trial that failed or
lacks a cost the others have is left out rather than guessed.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def front(points: Sequence[Mapping[str, Any]], costs: Sequence[str], metric: str = "metric",
          higher_is_better: bool = True) -> list[int]:
    """Indices of the non-dominated points among those with `metric` and every cost, in input order."""
    sign = 1.0 if higher_is_better else -1.0
    usable = [i for i, p in enumerate(points) if p.get(metric) is not None and all(p.get(c) is not None for c in costs)]
    vectors = {i: ([float(points[i][c]) for c in costs], sign * float(points[i][metric])) for i in usable}

    def dominates(a: int, b: int) -> bool:
        (ca, ma), (cb, mb) = vectors[a], vectors[b]
        no_worse = all(x <= y for x, y in zip(ca, cb)) and ma >= mb
        return no_worse and (any(x < y for x, y in zip(ca, cb)) or ma > mb)

    return [i for i in usable if not any(dominates(j, i) for j in usable if j != i)]
