"""Physical removal: slice the weights so pruned units are gone, and record the new shapes.

Heads are removed by slicing their rows of the q/k/v projections and their columns of the attention
output projection (transformers 5 has no ``prune_heads``): one head for classic attention, a KV group
with its query heads for grouped-query decoders. transformers configs can express these sizes only
when every layer has the same (``intermediate_size``; ``num_attention_heads``/``num_key_value_heads``/
``head_dim``), so the per-layer sizes are recorded in ``config.edge_compress`` (``ffn_sizes``; ``heads``
for classic attention, ``kv_heads`` for grouped models) for `load_pruned`, and the config fields are set
too where the sizes are uniform and the config has a field for them, so plain ``from_pretrained`` (and
exporters that size the KV cache from the config) work as well.  Classic attention derives its head size
from ``hidden_size // num_attention_heads``, so no config field can say "fewer heads of the same size":
a head-pruned BERT/DistilBERT/RoBERTa/GPT-2 reloads through `load_pruned` only (plain ``from_pretrained``
refuses its weights' shapes).  Dropped layers shrink the layer list, ``num_hidden_layers`` and the
per-layer ``layer_types``.
"""

from __future__ import annotations

import torch
from edge_compress.compress.prune.masks import Masks
from edge_compress.compress.prune.modules import keep_inputs, keep_outputs, out_features, scale_inputs
from edge_compress.compress.prune.search import Selection
from edge_compress.compress.prune.specs import ArchSpec, layer_list, root_module, text_config
from edge_compress.compress.prune.structure import Structure, read_structure
from torch import nn


def fold_scales(model: nn.Module, spec: ArchSpec, unit_width: int, scales: Masks) -> None:
    """Multiply tuned head/neuron scales into the output projections, so no hooks remain."""
    for layer, heads, neurons in zip(layer_list(model, spec), scales.heads, scales.neurons):
        scale_inputs(layer.get_submodule(spec.attn_out), heads.repeat_interleave(unit_width))
        scale_inputs(layer.get_submodule(spec.ffn_out), neurons)


def remove_units(model: nn.Module, spec: ArchSpec, selection: Selection) -> None:
    """Apply a validated `selection` in place."""
    layers = layer_list(model, spec)
    keep_units = _keep_groups if spec.grouped else _keep_heads
    structure = read_structure(model, spec)
    for index, (layer, keep) in enumerate(zip(layers, selection.heads)):
        if index not in selection.dropped_layers and not keep.all():
            keep_units(layer, spec, structure, keep.nonzero().flatten())
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


def _keep_heads(layer: nn.Module, spec: ArchSpec, structure: Structure, units: torch.Tensor) -> None:
    """Keep classic attention heads `units`: their q/k/v rows (in each of a packed module's blocks) and output columns."""
    attention = layer.get_submodule(spec.attention)
    rows = _features(units, structure.head_dim)
    width = int(getattr(attention, spec.num_heads_attr)) * structure.head_dim
    for path in spec.qkv:
        keep_outputs(layer.get_submodule(path), torch.cat([block * width + rows for block in range(spec.qkv_packed)]))
    keep_inputs(layer.get_submodule(spec.attn_out), rows)
    setattr(attention, spec.num_heads_attr, len(units))
    for attr in spec.width_attrs:
        setattr(attention, attr, len(rows))


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
    layer_types = getattr(config, "layer_types", None)  # sliding/full attention per layer (Gemma 2/3, Qwen)
    if isinstance(layer_types, list) and len(layer_types) == len(old):
        config.layer_types = [layer_types[i] for i in kept]
    config.num_hidden_layers = len(kept)


def _record_sizes(model: nn.Module, spec: ArchSpec) -> None:
    layers = layer_list(model, spec)
    sizes = {"ffn_sizes": [out_features(layer.get_submodule(spec.ffn_in[0])) for layer in layers]}
    config = text_config(model)
    structure = read_structure(model, spec)
    if not spec.grouped:
        sizes["heads"] = list(structure.heads)
    else:
        sizes["kv_heads"] = list(structure.heads)
        if len(set(structure.heads)) == 1:
            config.head_dim = structure.head_dim  # some configs derive it from hidden_size // num_attention_heads
            config.num_key_value_heads = structure.heads[0]
            config.num_attention_heads = structure.heads[0] * structure.group
    top = model.config
    top.edge_compress = {**(getattr(top, "edge_compress", None) or {}), **sizes}
    if len(set(sizes["ffn_sizes"])) == 1:  # uniform widths are expressible, so plain from_pretrained works too
        setattr(config, spec.ffn_size_attr, sizes["ffn_sizes"][0])


def restore_sizes(model: nn.Module, spec: ArchSpec, ffn_sizes: list[int], heads: list[int] | None) -> None:
    """Cut freshly built layers to recorded widths and head units (the weights are loaded afterwards)."""
    structure = read_structure(model, spec)
    keep_units = _keep_groups if spec.grouped else _keep_heads
    for index, (layer, size) in enumerate(zip(layer_list(model, spec), ffn_sizes)):
        _keep_neurons(layer, spec, torch.arange(size))
        if heads is not None and heads[index] != structure.heads[index]:
            keep_units(layer, spec, structure, torch.arange(heads[index]))
