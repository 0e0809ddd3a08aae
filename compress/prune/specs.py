"""Where the prunable parts of each supported architecture live, as data (one spec per model_type).

Adding an architecture means adding one `ArchSpec`. Paths are dotted attribute paths: ``layers``
is relative to ``model.base_model``; the others are relative to one layer of that list. The model's
own ``prune_heads`` (transformers) removes heads, so the config's ``pruned_heads`` keeps the pruned
model loadable with plain ``from_pretrained``; the spec only has to say where heads are counted
and where their concatenated outputs enter the output projection.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from compress.prune.errors import PruneError


@dataclass(frozen=True)
class ArchSpec:
    """Module layout of one model_type."""

    layers: str  # the nn.ModuleList of transformer blocks, from model.base_model
    attention: str  # module holding the head count attributes
    num_heads_attr: str  # attribute of `attention`: current number of heads
    head_dim_attr: str  # attribute of `attention`: size of one head
    attn_out: str  # output projection; its input is the heads' outputs, concatenated
    ffn_in: str  # first FFN projection; its outputs are the neurons
    ffn_out: str  # second FFN projection; its inputs are the neurons
    ffn_size_attr: str  # config attribute holding the (uniform) FFN width


_BERT = ArchSpec(
    layers="encoder.layer",
    attention="attention.self",
    num_heads_attr="num_attention_heads",
    head_dim_attr="attention_head_size",
    attn_out="attention.output.dense",
    ffn_in="intermediate.dense",
    ffn_out="output.dense",
    ffn_size_attr="intermediate_size",
)

SPECS: dict[str, ArchSpec] = {
    "bert": _BERT,
    "roberta": _BERT,
    "distilbert": ArchSpec(
        layers="transformer.layer",
        attention="attention",
        num_heads_attr="n_heads",
        head_dim_attr="attention_head_size",
        attn_out="attention.out_lin",
        ffn_in="ffn.lin1",
        ffn_out="ffn.lin2",
        ffn_size_attr="hidden_dim",
    ),
    "gpt2": ArchSpec(
        layers="h",
        attention="attn",
        num_heads_attr="num_heads",
        head_dim_attr="head_dim",
        attn_out="attn.c_proj",
        ffn_in="mlp.c_fc",
        ffn_out="mlp.c_proj",
        ffn_size_attr="n_inner",
    ),
}


def spec_for(model: nn.Module) -> ArchSpec:
    """The spec of `model`'s architecture, or a `PruneError` naming the supported ones."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in SPECS:
        raise PruneError(
            f"Structured pruning does not support model_type {model_type!r}; "
            f"supported: {', '.join(sorted(SPECS))}. Add an ArchSpec in compress/prune/specs.py."
        )
    return SPECS[model_type]


def layer_list(model: nn.Module, spec: ArchSpec) -> nn.ModuleList:
    """The model's list of transformer blocks."""
    return model.base_model.get_submodule(spec.layers)
