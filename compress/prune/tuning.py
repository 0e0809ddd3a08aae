"""Least-squares mask tuning (Kwon et al. 2022, §4.3): rescale the surviving heads and neurons so
each pruned sublayer reproduces the unpruned model's output, without retraining.

Layer by layer, on the calibration tokens, the output projection's output (bias excluded) is a sum
of per-unit contributions ``c_i``; we fit scales ``m`` minimising
``||sum_i m_i c_i(student input) - teacher output||^2 + damping·||m - 1||^2`` by normal equations,
keep them only if they lower the error, and move on with the tuned layer in place so later layers
correct the remaining drift. The residual-stream mismatch is not modelled (the simplification keeps
this architecture-independent). The scales are later folded into the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from edge_compress.compress.prune.importance import Batch
from edge_compress.compress.prune.masks import Masks, masked
from edge_compress.compress.prune.modules import Projection, weight_out_in
from edge_compress.compress.prune.specs import ArchSpec, layer_list
from edge_compress.compress.prune.structure import Structure
from torch import nn
from torch.utils.hooks import RemovableHandle

_DAMPING = 1e-3  # relative to the mean diagonal of the normal matrix


class _Stop(Exception):
    """Raised by a hook to end a forward pass once the needed activations are captured."""


def _capture(module: nn.Module, store: list[torch.Tensor]) -> RemovableHandle:
    """Record the module's input, then end the forward pass (later layers are not needed)."""

    def hook(_module: nn.Module, args: tuple) -> None:
        store.append(args[0].detach())
        raise _Stop

    return module.register_forward_pre_hook(hook, prepend=True)  # before the mask: raw inputs


def _run(model: nn.Module, batch: Batch, hooks: list) -> None:
    try:
        with torch.no_grad():
            model(**batch)
    except _Stop:
        pass
    finally:
        for handle in hooks:
            handle.remove()


def _tokens(x: torch.Tensor, batch: Batch) -> torch.Tensor:
    """(tokens, features) of the non-padding positions."""
    mask = batch.get("attention_mask")
    return x.reshape(-1, x.size(-1)) if mask is None else x[mask.bool()]


def _without_bias(module: Projection, x: torch.Tensor) -> torch.Tensor:
    out = module(x)
    return out if module.bias is None else out - module.bias


def _block_sum(x: torch.Tensor, unit_size: int) -> torch.Tensor:
    """Sum consecutive `unit_size` blocks along every dimension (features -> units)."""
    if x.dim() == 1:
        return x.reshape(-1, unit_size).sum(1)
    k = x.size(0) // unit_size
    return x.reshape(k, unit_size, k, unit_size).sum((1, 3))


def _normal_equations(
    module: Projection, input_gram: torch.Tensor, input_target: torch.Tensor, unit_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(A^T A, A^T y) where A's columns are the units' contributions ``W[:, S_i] u[S_i]``.

    With ``input_gram = sum_t u_t u_t^T`` and ``input_target = sum_t u_t * (W^T y_t)``, summing
    ``input_gram * W^T W`` over the units' feature blocks gives A^T A without materialising
    per-unit outputs (FFNs have thousands of units).
    """
    w = weight_out_in(module).double()
    return _block_sum(input_gram * (w.t() @ w), unit_size), _block_sum(input_target, unit_size)


def _solve(gram: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor | None:
    """Damped least-squares scales, or None when they would not reduce the error of all-ones."""
    ones = torch.ones_like(rhs)
    damping = _DAMPING * gram.diagonal().mean().clamp_min(1e-12)
    scales = torch.linalg.solve(gram + damping * torch.eye(len(rhs), dtype=gram.dtype), rhs + damping * ones)

    def error(m: torch.Tensor) -> float:
        return float(m @ gram @ m - 2 * m @ rhs)

    return scales if error(scales) < error(ones) else None


@torch.no_grad()
def tune_scales(
    student: nn.Module,
    teacher: nn.Module,
    spec: ArchSpec,
    structure: Structure,
    teacher_layer: Sequence[int],
    changed: Sequence[bool],
    batches: Sequence[Batch],
) -> Masks:
    """Scales for the pruned `student`'s heads and neurons; `teacher` is the model before pruning.

    `teacher_layer[l]` is the teacher layer matching student layer l; `changed[l]` says whether
    anything at or before it was pruned (earlier, untouched layers need no tuning).
    """
    scales = Masks.ones(structure)
    student_layers, teacher_layers = layer_list(student, spec), layer_list(teacher, spec)
    for layer, (t_index, touched) in enumerate(zip(teacher_layer, changed)):
        if not touched:
            continue
        for path, vector, unit_size in (
            (spec.attn_out, scales.heads, structure.unit_width),
            (spec.ffn_out, scales.neurons, 1),
        ):
            s_module = student_layers[layer].get_submodule(path)
            t_module = teacher_layers[t_index].get_submodule(path)
            input_gram = input_target = 0
            for batch in batches:
                t_in: list[torch.Tensor] = []
                _run(teacher, batch, [_capture(t_module, t_in)])
                s_in: list[torch.Tensor] = []
                with masked(student, spec, scales, structure.unit_width):
                    _run(student, batch, [_capture(s_module, s_in)])
                with torch.no_grad():
                    target = _without_bias(t_module, _tokens(t_in[0], batch))
                    u = _tokens(s_in[0], batch)
                    input_gram = input_gram + (u.t() @ u).double()
                    input_target = input_target + (u * (target @ weight_out_in(s_module))).sum(0).double()
            solved = _solve(*_normal_equations(s_module, input_gram, input_target, unit_size))
            if solved is not None:
                vector[layer] = solved.float()
    return scales
