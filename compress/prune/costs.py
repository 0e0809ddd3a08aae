"""Cost models: FLOPs per token and parameter count, as a floor plus a price per head and neuron.

FLOPs per token at sequence length S (one multiply-add = 2 FLOPs; hidden size d, head size h):

* one attention head: q, k, v and output projections ``8·d·h`` plus attention scores and the
  weighted sum of values ``4·S·h``;
* one FFN neuron: its input and output projections ``4·d``;
* floor: ``2·in·out`` for every linear layer outside the transformer blocks (pooler, classifier,
  LM head), counted per token. Embedding lookups, layer norms, softmax, activations and bias adds
  are ignored (they are small and not changed by pruning).

Parameters: a head owns ``4·d·h + 3·h`` (q/k/v/out weights, q/k/v biases), a neuron ``2·d + 1``;
the floor is everything else (embeddings, norms, output biases, heads of the model), so the total
is exact for the supported architectures.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from compress.prune.modules import in_features, is_projection, out_features
from compress.prune.specs import ArchSpec, layer_list
from compress.prune.structure import Structure


@dataclass(frozen=True)
class CostModel:
    """Cost = floor + head · kept heads + neuron · kept neurons."""

    floor: float
    head: float
    neuron: float

    def cost(self, heads: int, neurons: int) -> float:
        return self.floor + self.head * heads + self.neuron * neurons


def flops_model(model: nn.Module, spec: ArchSpec, structure: Structure, seq_len: int) -> CostModel:
    d, h = structure.hidden, structure.head_dim
    in_blocks = {id(m) for m in layer_list(model, spec).modules()}
    floor = sum(
        2 * in_features(m) * out_features(m)
        for m in model.modules()
        if is_projection(m) and id(m) not in in_blocks
    )
    return CostModel(floor=float(floor), head=float(8 * d * h + 4 * seq_len * h), neuron=float(4 * d))


def params_model(model: nn.Module, structure: Structure) -> CostModel:
    d, h = structure.hidden, structure.head_dim
    head, neuron = 4 * d * h + 3 * h, 2 * d + 1
    total = sum(p.numel() for p in model.parameters())
    floor = total - head * sum(structure.heads) - neuron * sum(structure.neurons)
    return CostModel(floor=float(floor), head=float(head), neuron=float(neuron))
