"""`PruneResult`: what a pruning call kept and what it saved, in a report-friendly form."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PruneResult:
    """Per-layer survivors and before/after costs.

    ``kept_heads`` / ``kept_neurons`` are indexed by the layers of the model as it was given and list
    the surviving positions (in that model's numbering); dropped layers list nothing. FLOPs are the
    per-token estimate of `compress.prune.costs` at ``seq_len``.
    """

    kept_heads: list[list[int]]
    kept_neurons: list[list[int]]
    dropped_layers: list[int]
    params_before: int
    params_after: int
    flops_before: float
    flops_after: float
    seq_len: int
    config: dict[str, Any] | None = field(default=None)

    @property
    def heads_per_layer(self) -> list[int]:
        return [len(h) for h in self.kept_heads]

    @property
    def neurons_per_layer(self) -> list[int]:
        return [len(n) for n in self.kept_neurons]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, with per-layer counts added for reports."""
        return {**asdict(self), "heads_per_layer": self.heads_per_layer, "neurons_per_layer": self.neurons_per_layer}
