"""The current shape of a supported model: heads and FFN neurons per layer, read from its modules."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from compress.prune.modules import in_features, out_features
from compress.prune.specs import ArchSpec, layer_list


@dataclass(frozen=True)
class Structure:
    """Per-layer sizes; read from the modules, not the config, so already-pruned models work."""

    hidden: int
    head_dim: int
    heads: tuple[int, ...]  # current heads per layer
    neurons: tuple[int, ...]  # current FFN width per layer

    @property
    def num_layers(self) -> int:
        return len(self.heads)


def read_structure(model: nn.Module, spec: ArchSpec) -> Structure:
    layers = list(layer_list(model, spec))
    attention = [layer.get_submodule(spec.attention) for layer in layers]
    return Structure(
        hidden=in_features(layers[0].get_submodule(spec.ffn_in)),
        head_dim=int(getattr(attention[0], spec.head_dim_attr)),
        heads=tuple(int(getattr(a, spec.num_heads_attr)) for a in attention),
        neurons=tuple(out_features(layer.get_submodule(spec.ffn_in)) for layer in layers),
    )
