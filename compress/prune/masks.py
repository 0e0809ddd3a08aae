"""Multiplicative head/neuron masks applied through hooks, without touching the weights.

A head's output enters the attention output projection as a slice of its input, and a neuron's
activation is one input of the second FFN projection; scaling those inputs is exactly masking the
unit (0 removes it, 1 keeps it, other values rescale it). For grouped-query attention a unit is a
KV group, whose query heads occupy one contiguous slice, so the same hook masks the whole group.
This works the same for every architecture and is what the Fisher scores differentiate and mask
tuning fits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from edge_compress.compress.prune.specs import ArchSpec, layer_list
from edge_compress.compress.prune.structure import Structure
from torch import nn


@dataclass
class Masks:
    """One mask vector per layer for head units and for FFN neurons."""

    heads: list[torch.Tensor]
    neurons: list[torch.Tensor]

    @classmethod
    def ones(cls, structure: Structure, requires_grad: bool = False) -> Masks:
        def make(n: int) -> torch.Tensor:
            return torch.ones(n, requires_grad=requires_grad)

        return cls([make(n) for n in structure.heads], [make(n) for n in structure.neurons])


def _scale_input(vector: torch.Tensor, repeat: int):
    def hook(module: nn.Module, args: tuple) -> tuple:
        scale = vector.repeat_interleave(repeat) if repeat > 1 else vector
        return (args[0] * scale.to(args[0].dtype),) + args[1:]

    return hook


@contextmanager
def masked(model: nn.Module, spec: ArchSpec, masks: Masks, unit_width: int) -> Iterator[None]:
    """Apply `masks` to `model` inside the block (the tensors are read at every forward).

    `unit_width` is the number of output-projection inputs one head unit owns (`Structure.unit_width`).
    """
    handles = []
    for layer, heads, neurons in zip(layer_list(model, spec), masks.heads, masks.neurons):
        out_proj = layer.get_submodule(spec.attn_out)
        handles.append(out_proj.register_forward_pre_hook(_scale_input(heads, unit_width)))
        ffn_out = layer.get_submodule(spec.ffn_out)
        handles.append(ffn_out.register_forward_pre_hook(_scale_input(neurons, 1)))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
