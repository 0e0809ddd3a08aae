"""Physical removal: slice the weights so pruned units are gone, and record the new shapes.

Classic attention heads go through the model's own ``prune_heads`` so ``config.pruned_heads`` lets
plain ``from_pretrained`` rebuild the shapes. Grouped-query decoders have no ``prune_heads``: a KV
group is removed by slicing its rows of ``q_proj``/``k_proj``/``v_proj`` and its columns of
``o_proj`` here. transformers configs can express these sizes only when every layer has the same
(``intermediate_size``; ``num_attention_heads``/``num_key_value_heads``/``head_dim``), so the
per-layer sizes are recorded in ``config.edge_compress`` (``ffn_sizes``, and ``kv_heads`` for
grouped models) for `load_pruned`, and the config fields are set too when the sizes are uniform, so
plain ``from_pretrained`` (and exporters that size the KV cache from the config) work as well.
Dropped layers shrink the layer list, ``num_hidden_layers`` and the per-layer ``layer_types``.
"""

from __future__ import annotations

import torch
from torch import nn

from compress.prune.masks import Masks
from compress.prune.modules import keep_inputs, keep_outputs, out_features, scale_inputs
from compress.prune.search import Selection
from compress.prune.specs import ArchSpec, layer_list, root_module, text_config
from compress.prune.structure import Structure, read_structure


def fold_scales(model: nn.Module, spec: ArchSpec, unit_width: int, scales: Masks) -> None:
    """Multiply tuned head/neuron scales into the output projections, so no hooks remain."""
    for layer, heads, neurons in zip(layer_list(model, spec), scales.heads, scales.neurons):
        scale_inputs(layer.get_submodule(spec.attn_out), heads.repeat_interleave(unit_width))
        scale_inputs(layer.get_submodule(spec.ffn_out), neurons)


def remove_units(model: nn.Module, spec: ArchSpec, selection: Selection) -> None:
    """Apply a validated `selection` in place."""
    layers = layer_list(model, spec)
    if spec.grouped:
        _remove_groups(layers, spec, read_structure(model, spec), selection)
    else:
        _remove_heads(model, selection)
    for layer, keep in zip(layers, selection.neurons):
        if keep.any() and not keep.all():
            _keep_neurons(layer, spec, keep.nonzero().flatten())
    _drop_layers(model, spec, selection.dropped_layers)
    _record_sizes(model, spec)


def _keep_neurons(layer: nn.Module, spec: ArchSpec, index: torch.Tensor) -> None:
    for path in spec.ffn_in:
        keep_outputs(layer.get_submodule(path), index)
    keep_inputs(layer.get_submodule(spec.ffn_out), index)


def _features(units: torch.Tensor, width: int) -> torch.Tensor:
    """Feature indices of `units` when unit u owns features ``u·width .. u·width + width - 1``."""
    return (units[:, None] * width + torch.arange(width)).flatten()


def _keep_groups(layer: nn.Module, spec: ArchSpec, structure: Structure, units: torch.Tensor) -> None:
    """Keep KV heads `units`, their query heads (query head i reads KV head i // group) and o_proj columns."""
    kv_rows, q_rows = _features(units, structure.head_dim), _features(units, structure.unit_width)
    for path in spec.kv_proj:
        keep_outputs(layer.get_submodule(path), kv_rows)
    keep_outputs(layer.get_submodule(spec.q_proj), q_rows)
    keep_inputs(layer.get_submodule(spec.attn_out), q_rows)


def _remove_groups(layers: nn.ModuleList, spec: ArchSpec, structure: Structure, selection: Selection) -> None:
    for index, (layer, keep) in enumerate(zip(layers, selection.heads)):
        if index not in selection.dropped_layers and not keep.all():
            _keep_groups(layer, spec, structure, keep.nonzero().flatten())


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
    root = root_module(model, spec)
    parent = root.get_submodule(parent_path) if parent_path else root
    old = getattr(parent, name)
    kept = [i for i in range(len(old)) if i not in dropped]
    setattr(parent, name, nn.ModuleList(old[i] for i in kept))
    for new_index, old_index in enumerate(kept):  # caches are indexed by layer_idx
        for module in old[old_index].modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new_index
    config = text_config(model)
    pruned = config.__dict__.get("pruned_heads")  # transformers 5 keeps it only on prune_heads models' configs
    if pruned is not None:
        config.pruned_heads = {new: pruned[old_i] for new, old_i in enumerate(kept) if old_i in pruned}
    layer_types = getattr(config, "layer_types", None)  # sliding/full attention per layer (Gemma 2/3, Qwen)
    if isinstance(layer_types, list) and len(layer_types) == len(old):
        config.layer_types = [layer_types[i] for i in kept]
    config.num_hidden_layers = len(kept)


def _record_sizes(model: nn.Module, spec: ArchSpec) -> None:
    layers = layer_list(model, spec)
    sizes = {"ffn_sizes": [out_features(layer.get_submodule(spec.ffn_in[0])) for layer in layers]}
    config = text_config(model)
    if spec.grouped:
        structure = read_structure(model, spec)
        sizes["kv_heads"] = list(structure.heads)
        if len(set(structure.heads)) == 1:
            config.head_dim = structure.head_dim  # some configs derive it from hidden_size // num_attention_heads
            config.num_key_value_heads = structure.heads[0]
            config.num_attention_heads = structure.heads[0] * structure.group
    top = model.config
    top.edge_compress = {**(getattr(top, "edge_compress", None) or {}), **sizes}
    if len(set(sizes["ffn_sizes"])) == 1:  # uniform widths are expressible, so plain from_pretrained works too
        setattr(config, spec.ffn_size_attr, sizes["ffn_sizes"][0])


def restore_sizes(model: nn.Module, spec: ArchSpec, ffn_sizes: list[int], kv_heads: list[int] | None) -> None:
    """Cut freshly built layers to recorded widths and KV heads (the weights are loaded afterwards)."""
    structure = read_structure(model, spec) if kv_heads is not None else None
    for index, (layer, size) in enumerate(zip(layer_list(model, spec), ffn_sizes)):
        _keep_neurons(layer, spec, torch.arange(size))
        if structure is not None and kv_heads[index] != structure.heads[index]:
            _keep_groups(layer, spec, structure, torch.arange(kv_heads[index]))
