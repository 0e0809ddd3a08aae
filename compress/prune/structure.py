"""The current shape of a supported model: heads and FFN neurons per layer, read from its modules."""

from __future__ import annotations

from dataclasses import dataclass

from edge_compress.compress.prune.errors import PruneError
from edge_compress.compress.prune.modules import in_features, out_features
from edge_compress.compress.prune.specs import ArchSpec, layer_list
from torch import nn


@dataclass(frozen=True)
class Structure:
    """Per-layer sizes; read from the modules, not the config, so already-pruned models work.

    A head *unit* is one attention head, or for grouped-query attention one KV head together with its
    ``group`` query heads; ``heads`` counts units.
    """

    hidden: int
    head_dim: int
    heads: tuple[int, ...]  # current head units per layer
    neurons: tuple[int, ...]  # current FFN width per layer
    group: int = 1  # query heads per unit

    @property
    def num_layers(self) -> int:
        return len(self.heads)

    @property
    def unit_width(self) -> int:
        """Features one head unit occupies in the attention output projection's input."""
        return self.head_dim * self.group


def read_structure(model: nn.Module, spec: ArchSpec) -> Structure:
    layers = list(layer_list(model, spec))
    attention = [layer.get_submodule(spec.attention) for layer in layers]
    head_dim = int(getattr(attention[0], spec.head_dim_attr))
    group = 1
    if spec.grouped:
        kv = [out_features(layer.get_submodule(spec.kv_proj[0])) // head_dim for layer in layers]
        queries = [out_features(layer.get_submodule(spec.q_proj)) // head_dim for layer in layers]
        groups = {q // k for q, k in zip(queries, kv)}
        if len(groups) != 1 or any(q % k for q, k in zip(queries, kv)):
            raise PruneError(f"query heads per layer {queries} are not one multiple of the KV heads per layer {kv}; "
                             "the model was not built by transformers or pruned by compress.prune.")
        group, heads = groups.pop(), tuple(kv)
    else:
        heads = tuple(int(getattr(a, spec.num_heads_attr)) for a in attention)
    first_in = layers[0].get_submodule(spec.ffn_in[0])
    return Structure(
        hidden=in_features(first_in),
        head_dim=head_dim,
        heads=heads,
        neurons=tuple(out_features(layer.get_submodule(spec.ffn_in[0])) for layer in layers),
        group=group,
    )
