"""Entry points: `prune` (data-driven, retraining-free) and `apply_plan` (explicit removal)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from itertools import islice

import torch
from edge_compress.compress.prune.config import PruneConfig
from edge_compress.compress.prune.costs import CostModel, flops_model, params_model
from edge_compress.compress.prune.errors import PruneError
from edge_compress.compress.prune.importance import Batch, is_causal_lm, mask_gradients
from edge_compress.compress.prune.physical import fold_scales, remove_units
from edge_compress.compress.prune.plan import PrunePlan
from edge_compress.compress.prune.result import PruneResult
from edge_compress.compress.prune.search import Limits, Selection, rearrange, search
from edge_compress.compress.prune.specs import ArchSpec, spec_for
from edge_compress.compress.prune.structure import Structure, read_structure
from edge_compress.compress.prune.tuning import tune_scales
from torch import nn


def prune(model: nn.Module, config: PruneConfig, calib_batches: Iterable[Batch]) -> PruneResult:
    """Prune `model` in place to `config`'s targets, scoring units on `calib_batches`.

    `calib_batches` yields dicts of tensors the model accepts (``input_ids``, ``attention_mask``,
    optionally ``labels``); the first ``config.num_calib_batches`` are used. Inputs are checked
    before any work. Save the result with ``model.save_pretrained`` and reload with `load_pruned`.
    """
    spec = spec_for(model)
    structure = read_structure(model, spec)
    limits = _limits(model, spec, structure, config)
    batches = _take(calib_batches, config.num_calib_batches, model)

    was_training = model.training
    model.eval()
    grads = mask_gradients(model, spec, structure, batches)
    head_importance, neuron_importance = grads.fisher()
    uniform = config.uniform_heads if config.uniform_heads is not None else is_causal_lm(model)
    selection = search(head_importance, neuron_importance, limits, config.prune_layers, uniform)
    if selection is None:  # unreachable after _limits' checks; kept as a guard with a clear message
        raise PruneError(f"No pruned model meets the targets of {config}.")
    if config.mask_rearrange:
        selection = Selection(
            heads=[rearrange(m, g) for m, g in zip(selection.heads, grads.heads)],
            neurons=[rearrange(m, g) for m, g in zip(selection.neurons, grads.neurons)],
            dropped_layers=selection.dropped_layers,
        )
    teacher = copy.deepcopy(model) if config.mask_tuning else None
    result = _apply(model, spec, structure, selection, config)
    if teacher is not None:
        _tune(model, teacher, spec, selection, batches)
    model.train(was_training)
    return result


def check_prunable(model: nn.Module, config: PruneConfig) -> None:
    """Raise `PruneError` now if `prune(model, config, ...)` would refuse: architecture, targets, budgets.

    Lets a pipeline reject a bad request before it spends minutes on other work.
    """
    spec = spec_for(model)
    _limits(model, spec, read_structure(model, spec), config)


def _tune(student: nn.Module, teacher: nn.Module, spec: ArchSpec, selection: Selection, batches: list[Batch]) -> None:
    """Least-squares mask tuning of the pruned `student` against its unpruned copy, folded into weights."""
    teacher_layer, changed, touched = [], [], False
    for layer, (heads, neurons) in enumerate(zip(selection.heads, selection.neurons)):
        touched = touched or layer in selection.dropped_layers or not (heads.all() and neurons.all())
        if layer not in selection.dropped_layers:
            teacher_layer.append(layer)
            changed.append(touched)
    structure = read_structure(student, spec)
    scales = tune_scales(student, teacher, spec, structure, teacher_layer, changed, batches)
    fold_scales(student, spec, structure.unit_width, scales)


def apply_plan(model: nn.Module, plan: PrunePlan, seq_len: int = 128) -> PruneResult:
    """Remove exactly the heads, neurons and layers named in `plan` (no data needed)."""
    spec = spec_for(model)
    structure = read_structure(model, spec)
    return _apply(model, spec, structure, plan.to_selection(structure), None, seq_len)


def _apply(
    model: nn.Module,
    spec: ArchSpec,
    structure: Structure,
    selection: Selection,
    config: PruneConfig | None,
    seq_len: int | None = None,
) -> PruneResult:
    seq_len = config.seq_len if config is not None else seq_len
    params_before = sum(p.numel() for p in model.parameters())
    flops_before = flops_model(model, spec, structure, seq_len).cost(sum(structure.heads), sum(structure.neurons))
    remove_units(model, spec, selection)
    after = read_structure(model, spec)
    return PruneResult(
        kept_heads=[m.nonzero().flatten().tolist() for m in selection.heads],
        kept_neurons=[m.nonzero().flatten().tolist() for m in selection.neurons],
        dropped_layers=list(selection.dropped_layers),
        params_before=params_before,
        params_after=sum(p.numel() for p in model.parameters()),
        flops_before=flops_before,
        flops_after=flops_model(model, spec, after, seq_len).cost(sum(after.heads), sum(after.neurons)),
        seq_len=seq_len,
        config=None if config is None else config.to_dict(),
    )


def _limits(model: nn.Module, spec: ArchSpec, structure: Structure, config: PruneConfig) -> Limits:
    """Turn the targets into limits, raising if no model with >=1 head and neuron per layer fits."""
    heads, neurons = sum(structure.heads), sum(structure.neurons)
    min_units = 1 if config.prune_layers else structure.num_layers
    how = "or set prune_layers=True" if not config.prune_layers else "it already may drop layers"
    max_heads = heads - round((config.head_fraction or 0.0) * heads)
    max_neurons = neurons - round((config.ffn_fraction or 0.0) * neurons)
    for name, kept, fraction in (("head", max_heads, config.head_fraction), ("ffn", max_neurons, config.ffn_fraction)):
        if kept < min_units:
            raise PruneError(
                f"{name}_fraction={fraction} keeps {kept} of them, but {min_units} kept layer(s) need at "
                f"least one each; lower {name}_fraction ({how})."
            )
    budgets: list[tuple[CostModel, float]] = []
    for name, fraction, cost_model in (
        ("flops_budget", config.flops_budget, lambda: flops_model(model, spec, structure, config.seq_len)),
        ("params_budget", config.params_budget, lambda: params_model(model, structure)),
    ):
        if fraction is None:
            continue
        costs = cost_model()
        limit = fraction * costs.cost(heads, neurons)
        smallest = costs.cost(min_units, min_units)
        if smallest > limit:
            raise PruneError(
                f"{name}={fraction} cannot be met: it allows {limit:.4g}, but the parts pruning cannot "
                f"remove (embeddings, norms, classifier/LM head: {costs.floor:.4g}) plus one head and one "
                f"neuron in each of {min_units} layer(s) need {smallest:.4g}. Raise {name} ({how})."
            )
        budgets.append((costs, limit))
    if config.prune_layers and getattr(model.config, "scale_attn_by_inverse_layer_idx", False):
        raise PruneError(
            "prune_layers=True cannot be used with scale_attn_by_inverse_layer_idx=True: the attention "
            "scale depends on the layer's position, which dropping layers changes. Set prune_layers=False."
        )
    return Limits(max_heads=max_heads, max_neurons=max_neurons, budgets=tuple(budgets))


def _take(calib_batches: Iterable[Batch], limit: int, model: nn.Module) -> list[Batch]:
    device = next(model.parameters()).device
    batches = []
    for batch in islice(calib_batches, limit):
        if not isinstance(batch, dict) or "input_ids" not in batch:
            raise PruneError("Each calibration batch must be a dict of tensors with at least 'input_ids'.")
        batches.append({k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()})
    if not batches:
        raise PruneError("calib_batches is empty; Fisher importance needs at least one batch of calibration data.")
    return batches
