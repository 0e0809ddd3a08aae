"""`PrunePlan`: an explicit list of what to remove, for callers who already know (or replay a
previous result); validated against the model before anything is touched."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from edge_compress.compress.prune.errors import PruneError
from edge_compress.compress.prune.search import Selection
from edge_compress.compress.prune.structure import Structure


@dataclass(frozen=True)
class PrunePlan:
    """Units to remove, in the model's current numbering (like transformers' ``prune_heads``).

    A layer must keep at least one head and one neuron unless it is listed in ``layers``, which
    removes it whole.
    """

    heads: dict[int, list[int]] = field(default_factory=dict)
    neurons: dict[int, list[int]] = field(default_factory=dict)
    layers: list[int] = field(default_factory=list)

    def to_selection(self, structure: Structure) -> Selection:
        n = structure.num_layers
        for what, indices in (("heads", self.heads), ("neurons", self.neurons), ("layers", self.layers)):
            bad = [layer for layer in indices if not 0 <= layer < n]
            if bad:
                raise PruneError(f"PrunePlan.{what} names layer(s) {bad}, but the model has layers 0..{n - 1}.")
        if len(set(self.layers)) >= n:
            raise PruneError(f"PrunePlan.layers removes all {n} layers; keep at least one.")
        heads = [_keep_mask("heads", layer, size, self.heads.get(layer, []), layer in self.layers)
                 for layer, size in enumerate(structure.heads)]
        neurons = [_keep_mask("neurons", layer, size, self.neurons.get(layer, []), layer in self.layers)
                   for layer, size in enumerate(structure.neurons)]
        return Selection(heads=heads, neurons=neurons, dropped_layers=sorted(set(self.layers)))


def _keep_mask(what: str, layer: int, size: int, remove: list[int], dropped: bool) -> torch.Tensor:
    bad = [i for i in remove if not 0 <= i < size]
    if bad:
        raise PruneError(f"PrunePlan.{what}[{layer}] names {bad}, but layer {layer} has {what} 0..{size - 1}.")
    keep = torch.ones(size, dtype=torch.bool)
    keep[list(remove)] = False
    if dropped:
        return torch.zeros(size, dtype=torch.bool)
    if not keep.any():
        raise PruneError(
            f"PrunePlan removes every one of layer {layer}'s {size} {what}; keep at least one, "
            f"or remove the whole layer with PrunePlan(layers=[{layer}])."
        )
    return keep
