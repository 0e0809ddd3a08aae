"""Cost models: FLOPs per token and parameter count, as a floor plus a price per head and neuron.

A head unit is one head, or for grouped-query attention one KV head with its ``g`` query heads
(``g = 1`` for classic attention). FLOPs per token at sequence length S (one multiply-add = 2
FLOPs; hidden size d, head size h):

* one head unit: its projection weights ``2·w`` where ``w = (2g + 2)·d·h`` (q and output
  projections ``g·d·h`` each, k and v ``d·h`` each), plus attention scores and the weighted sum of
  values ``4·S·h·g``; for classic attention that is ``8·d·h + 4·S·h``;
* one FFN neuron: ``2·d`` per projection it belongs to: ``4·d`` for a GELU MLP, ``6·d`` for a gated
  one (gate, up, down);
* floor: ``2·in·out`` for every linear layer outside the transformer blocks (pooler, classifier,
  LM head), counted per token. Embedding lookups, layer norms, softmax, activations and bias adds
  are ignored (they are small and not changed by pruning).

Parameters: a head unit owns its q/k/v/out weights and q/k/v biases (``4·d·h + 3·h`` for classic
attention), a neuron its weights and input biases (``2·d + 1`` for a GELU MLP, ``3·d`` for a gated
one without biases); the floor is everything else (embeddings, norms, output biases, heads of the
model), so the total is exact for the supported architectures.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_compress.compress.prune.modules import in_features, is_projection, out_features
from edge_compress.compress.prune.specs import ArchSpec, layer_list, spec_for
from edge_compress.compress.prune.structure import Structure
from torch import nn


@dataclass(frozen=True)
class CostModel:
    """Cost = floor + head · kept heads + neuron · kept neurons."""

    floor: float
    head: float
    neuron: float

    def cost(self, heads: int, neurons: int) -> float:
        return self.floor + self.head * heads + self.neuron * neurons


def _head_weights(structure: Structure) -> int:
    d, h, g = structure.hidden, structure.head_dim, structure.group
    return (2 * g + 2) * d * h


def _head_biases(model: nn.Module, spec: ArchSpec, structure: Structure) -> int:
    """Bias entries one head unit owns in the q/k/v projections (3·h for BERT-style attention)."""
    if not spec.grouped:
        return 3 * structure.head_dim
    layer = layer_list(model, spec)[0]
    h, g = structure.head_dim, structure.group
    return sum((g if path == spec.q_proj else 1) * h
               for path in (spec.q_proj, *spec.kv_proj) if layer.get_submodule(path).bias is not None)


def _neuron_biases(model: nn.Module, spec: ArchSpec) -> int:
    layer = layer_list(model, spec)[0]
    return sum(layer.get_submodule(path).bias is not None for path in spec.ffn_in)


def flops_model(model: nn.Module, spec: ArchSpec, structure: Structure, seq_len: int) -> CostModel:
    d, h, g = structure.hidden, structure.head_dim, structure.group
    in_blocks = {id(m) for m in layer_list(model, spec).modules()}
    floor = sum(
        2 * in_features(m) * out_features(m)
        for m in model.modules()
        if is_projection(m) and id(m) not in in_blocks
    )
    head = 2 * _head_weights(structure) + 4 * seq_len * h * g
    return CostModel(floor=float(floor), head=float(head), neuron=float(2 * d * (len(spec.ffn_in) + 1)))


def params_model(model: nn.Module, structure: Structure) -> CostModel:
    spec, d = spec_for(model), structure.hidden
    head = _head_weights(structure) + _head_biases(model, spec, structure)
    neuron = d * (len(spec.ffn_in) + 1) + _neuron_biases(model, spec)
    total = sum(p.numel() for p in model.parameters())
    floor = total - head * sum(structure.heads) - neuron * sum(structure.neurons)
    return CostModel(floor=float(floor), head=float(head), neuron=float(neuron))
