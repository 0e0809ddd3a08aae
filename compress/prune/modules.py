"""Slicing and scaling of projection modules along their input or output features.

`nn.Linear` stores weights as (out, in), GPT-2's `Conv1D` as (in, out); a table of layouts keeps
the rest of the package free of type checks. Slicing happens in place so dtype, device and the
parent's reference stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers.pytorch_utils import Conv1D


@dataclass(frozen=True)
class _Layout:
    out_dim: int  # weight dimension of output features
    in_dim: int  # weight dimension of input features
    out_attr: str  # attribute storing the number of output features
    in_attr: str  # attribute storing the number of input features


_LAYOUTS: dict[type, _Layout] = {
    nn.Linear: _Layout(0, 1, "out_features", "in_features"),
    Conv1D: _Layout(1, 0, "nf", "nx"),
}

Projection = nn.Linear | Conv1D


def _layout(module: nn.Module) -> _Layout:
    for cls, layout in _LAYOUTS.items():
        if isinstance(module, cls):
            return layout
    raise TypeError(f"{type(module).__name__} is not a projection this package can slice")


def is_projection(module: nn.Module) -> bool:
    return isinstance(module, tuple(_LAYOUTS))


def in_features(module: Projection) -> int:
    return getattr(module, _layout(module).in_attr)


def out_features(module: Projection) -> int:
    return getattr(module, _layout(module).out_attr)


def weight_out_in(module: Projection) -> torch.Tensor:
    """The weight as an (out, in) matrix, whatever the module's storage order."""
    return module.weight if _layout(module).out_dim == 0 else module.weight.t()


@torch.no_grad()
def keep_outputs(module: Projection, index: torch.Tensor) -> None:
    """Keep only the output features `index` (weights and bias)."""
    layout = _layout(module)
    module.weight = nn.Parameter(module.weight.index_select(layout.out_dim, index).clone())
    if module.bias is not None:
        module.bias = nn.Parameter(module.bias.index_select(0, index).clone())
    setattr(module, layout.out_attr, len(index))


@torch.no_grad()
def keep_inputs(module: Projection, index: torch.Tensor) -> None:
    """Keep only the input features `index`; the bias is untouched."""
    layout = _layout(module)
    module.weight = nn.Parameter(module.weight.index_select(layout.in_dim, index).clone())
    setattr(module, layout.in_attr, len(index))


@torch.no_grad()
def scale_inputs(module: Projection, scale: torch.Tensor) -> None:
    """Multiply each input feature's weights by `scale`, i.e. fold an input scaling into the weights."""
    shape = [1, 1]
    shape[_layout(module).in_dim] = -1
    module.weight.mul_(scale.to(module.weight).reshape(shape))
