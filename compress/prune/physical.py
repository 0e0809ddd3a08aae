"""Physical removal: slice the weights so pruned units are gone, and record the new shapes.

Heads go through the model's own ``prune_heads`` so ``config.pruned_heads`` lets plain
``from_pretrained`` rebuild the shapes; FFN widths (which transformers configs can only express
when uniform) are recorded in ``config.edge_compress["ffn_sizes"]`` for `load_pruned`; dropped layers
shrink the layer list and ``num_hidden_layers``.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.prune.masks import Masks
from compress.prune.modules import keep_inputs, keep_outputs, out_features, scale_inputs
from compress.prune.search import Selection
from compress.prune.specs import ArchSpec, layer_list


def fold_scales(model: nn.Module, spec: ArchSpec, head_dim: int, scales: Masks) -> None:
    """Multiply tuned head/neuron scales into the output projections, so no hooks remain."""
    for layer, heads, neurons in zip(layer_list(model, spec), scales.heads, scales.neurons):
        scale_inputs(layer.get_submodule(spec.attn_out), heads.repeat_interleave(head_dim))
        scale_inputs(layer.get_submodule(spec.ffn_out), neurons)


def remove_units(model: nn.Module, spec: ArchSpec, selection: Selection) -> None:
    """Apply a validated `selection` in place."""
    layers = layer_list(model, spec)
    _remove_heads(model, selection)
    for layer, keep in zip(layers, selection.neurons):
        if keep.any() and not keep.all():
            index = keep.nonzero().flatten()
            keep_outputs(layer.get_submodule(spec.ffn_in), index)
            keep_inputs(layer.get_submodule(spec.ffn_out), index)
    _drop_layers(model, spec, selection.dropped_layers)
    _record_ffn_sizes(model, spec)


def _remove_heads(model: nn.Module, selection: Selection) -> None:
    """Translate current head positions to the original indices `prune_heads` expects."""
    config = model.config
    to_prune = {}
    for layer, keep in enumerate(selection.heads):
        if layer in selection.dropped_layers or keep.all():
            continue
        gone = set(config.pruned_heads.get(layer, []))
        alive = [h for h in range(config.num_attention_heads) if h not in gone]
        to_prune[layer] = [alive[i] for i in (~keep).nonzero().flatten().tolist()]
    if to_prune:
        model.prune_heads(to_prune)


def _drop_layers(model: nn.Module, spec: ArchSpec, dropped: list[int]) -> None:
    if not dropped:
        return
    parent_path, _, name = spec.layers.rpartition(".")
    parent = model.base_model.get_submodule(parent_path) if parent_path else model.base_model
    old = getattr(parent, name)
    kept = [i for i in range(len(old)) if i not in dropped]
    setattr(parent, name, nn.ModuleList(old[i] for i in kept))
    for new_index, old_index in enumerate(kept):  # caches are indexed by layer_idx
        for module in old[old_index].modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config = model.config
    config.pruned_heads = {
        new: config.pruned_heads[old_i] for new, old_i in enumerate(kept) if old_i in config.pruned_heads
    }
    config.num_hidden_layers = len(kept)


def _record_ffn_sizes(model: nn.Module, spec: ArchSpec) -> None:
    sizes = [out_features(layer.get_submodule(spec.ffn_in)) for layer in layer_list(model, spec)]
    config = model.config
    config.edge_compress = {**(getattr(config, "edge_compress", None) or {}), "ffn_sizes": sizes}
    if len(set(sizes)) == 1:  # uniform widths are expressible, so plain from_pretrained works too
        setattr(config, spec.ffn_size_attr, sizes[0])


def restore_ffn_sizes(model: nn.Module, spec: ArchSpec, sizes: list[int]) -> None:
    """Cut freshly built FFNs to recorded widths (the weights are loaded afterwards)."""
    for layer, size in zip(layer_list(model, spec), sizes):
        index = torch.arange(size)
        keep_outputs(layer.get_submodule(spec.ffn_in), index)
        keep_inputs(layer.get_submodule(spec.ffn_out), index)
