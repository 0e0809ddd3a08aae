"""Which heads and neurons to keep: Fisher mask search under cost limits and mask rearrangement
(Kwon et al. 2022, "A Fast Post-Training Pruning Framework for Transformers", §4.1-4.2).

Search: heads and neurons are ranked globally by diagonal Fisher importance; for every possible
number of kept heads, the cost limits decide how many neurons fit, and the split keeping the most
importance wins. Each kept layer keeps its best head and best neuron (zero-width attention/FFN
cannot be built); with ``prune_layers`` the search also tries dropping the k least important
layers entirely and keeps whichever k scores best. With ``uniform_heads`` every kept layer keeps the
same number of heads (its most important ones): a decoder's KV cache then has one shape for all
layers, which exporters and on-device runtimes size from the config.

Rearrangement: within each layer, the same number of units is re-chosen greedily with the
layer's full (per-batch gradient) Fisher block, which accounts for units that compensate each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from edge_compress.compress.prune.costs import CostModel


@dataclass(frozen=True)
class Limits:
    """Upper bounds on what survives: counts of heads/neurons, and (cost model, max cost) pairs."""

    max_heads: int
    max_neurons: int
    budgets: tuple[tuple[CostModel, float], ...] = ()


@dataclass(frozen=True)
class Selection:
    """Kept units per layer (boolean masks); dropped layers are listed and keep nothing."""

    heads: list[torch.Tensor]
    neurons: list[torch.Tensor]
    dropped_layers: list[int]


def _ranked(importance: list[torch.Tensor], layers: list[int]) -> tuple[list[tuple[int, int]], torch.Tensor]:
    """Units of `layers` in keep order (each layer's best first), with cumulative kept importance."""
    forced, rest = [], []
    for layer in layers:
        order = importance[layer].argsort(descending=True).tolist()
        forced.append((layer, order[0]))
        rest.extend((layer, i) for i in order[1:])
    rest.sort(key=lambda unit: -float(importance[unit[0]][unit[1]]))
    units = forced + rest
    scores = torch.tensor([0.0] + [float(importance[layer][i]) for layer, i in units], dtype=torch.float64)
    return units, scores.cumsum(0)


def _head_options(
    importance: list[torch.Tensor], layers: list[int], max_heads: int, uniform: bool
) -> list[tuple[list[tuple[int, int]], float]]:
    """Every head set the search may keep, with its importance: a prefix of the global ranking, or the top k per layer."""
    if not uniform:
        units, scores = _ranked(importance, layers)
        return [(units[:h], float(scores[h])) for h in range(len(layers), min(max_heads, len(units)) + 1)]
    orders = {layer: importance[layer].argsort(descending=True).tolist() for layer in layers}
    options = []
    for k in range(1, min(len(orders[layer]) for layer in layers) + 1):
        if k * len(layers) <= max_heads:
            units = [(layer, i) for layer in layers for i in orders[layer][:k]]
            options.append((units, sum(float(importance[layer][i]) for layer, i in units)))
    return options


def _max_neurons(limits: Limits, heads: int, available: int) -> int:
    n = min(limits.max_neurons, available)
    for model, limit in limits.budgets:
        n = min(n, int((limit - model.floor - model.head * heads) // model.neuron))
    return n


def search(
    head_importance: list[torch.Tensor],
    neuron_importance: list[torch.Tensor],
    limits: Limits,
    prune_layers: bool,
    uniform_heads: bool = False,
) -> Selection | None:
    """The selection keeping most importance within `limits`, or None if nothing fits."""
    num_layers = len(head_importance)
    layer_importance = [float(h.sum() + n.sum()) for h, n in zip(head_importance, neuron_importance)]
    by_importance = sorted(range(num_layers), key=lambda layer: layer_importance[layer])
    best: tuple[float, list[tuple[int, int]], list[tuple[int, int]], list[int]] | None = None
    for k in range(num_layers if prune_layers else 1):
        dropped = sorted(by_importance[:k])
        kept_layers = [layer for layer in range(num_layers) if layer not in dropped]
        neurons, neuron_scores = _ranked(neuron_importance, kept_layers)
        for heads, head_score in _head_options(head_importance, kept_layers, limits.max_heads, uniform_heads):
            n = _max_neurons(limits, len(heads), len(neurons))
            if n < len(kept_layers):
                continue
            score = head_score + float(neuron_scores[n])
            if best is None or score > best[0]:
                best = (score, heads, neurons[:n], dropped)
    if best is None:
        return None
    _, heads, neurons, dropped = best
    return Selection(_to_masks(heads, head_importance), _to_masks(neurons, neuron_importance), dropped)


def _to_masks(units: list[tuple[int, int]], like: list[torch.Tensor]) -> list[torch.Tensor]:
    masks = [torch.zeros(len(t), dtype=torch.bool) for t in like]
    if units:
        layers, indices = torch.tensor(units).t()
        for layer, mask in enumerate(masks):
            mask[indices[layers == layer]] = True
    return masks


def rearrange(mask: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
    """Re-choose which units of one layer to prune, keeping the count (Kwon et al., Alg. 2).

    `grads` is (num_batches, units). The loss increase of pruning set P is approximated by
    ``sum_b (sum_{i in P} g_bi)^2``; starting from the least important units, each other unit is
    tentatively added to P and the unit whose removal from P leaves the smallest loss is dropped.
    """
    num_pruned = int((~mask).sum())
    if num_pruned == 0 or num_pruned == len(mask):
        return mask
    g = grads.t().double()  # (units, batches)
    squared = g.pow(2).sum(1)
    order = squared.argsort().tolist()
    pruned = torch.zeros(len(mask), dtype=torch.bool)
    pruned[order[:num_pruned]] = True
    total = g[pruned].sum(0)
    for index in order[num_pruned:]:
        pruned[index] = True
        total = total + g[index]
        # loss of P without unit j: |total - g_j|^2, for every j at once
        loss_without = (total @ total - 2 * g @ total + squared).masked_fill(~pruned, float("inf"))
        out = int(loss_without.argmin())
        pruned[out] = False
        total = total - g[out]
    return ~pruned
