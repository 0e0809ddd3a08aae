"""Where the prunable parts of each supported architecture live, as data (one spec per model_type).

Adding an architecture means adding one `ArchSpec`. Paths are dotted attribute paths: ``layers``
is relative to the spec's root module (``model.base_model``, or ``model.get_decoder()`` for
decoder LMs, whose base-model prefix does not always name the attribute holding the text model);
the others are relative to one layer of that list.

Heads are removed by slicing here, for both kinds of attention (transformers 5 removed ``prune_heads``
and ``config.pruned_heads``; its attention modules infer the head count from the tensor shapes):

* classic multi-head attention (BERT, RoBERTa, DistilBERT, GPT-2): head ``i`` owns rows
  ``i·h .. i·h + h - 1`` of each ``qkv`` projection (GPT-2's ``c_attn`` packs q, k and v in one module:
  three such blocks) and the same columns of the output projection; ``num_heads_attr`` and
  ``width_attrs`` are the module's own records of the head count and the heads' total width.
* grouped-query attention (Llama, Mistral, Qwen2/3, Gemma 1/2/3): these classes have no
  ``prune_heads``, and query head ``i`` reads KV head ``i // group``, so the unit is a *KV group*:
  one KV head (its ``k_proj``/``v_proj`` rows) plus its ``group`` query heads (contiguous
  ``q_proj`` rows and ``o_proj`` columns). Removing a group keeps ``num_key_value_groups`` (the
  attention's only stored head count) valid; the modules infer head counts from tensor shapes.

FFN neurons are the outputs of every ``ffn_in`` projection (one for GELU MLPs; gate and up for
gated MLPs) and the inputs of ``ffn_out``, removed together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge_compress.compress.prune.errors import PruneError
from torch import nn


@dataclass(frozen=True)
class ArchSpec:
    """Module layout of one model_type."""

    layers: str  # the nn.ModuleList of transformer blocks, from the root module
    attention: str  # module holding the head size attribute (and, for classic attention, the head count)
    head_dim_attr: str  # attribute of `attention`: size of one head
    attn_out: str  # output projection; its input is the heads' outputs, concatenated
    ffn_in: tuple[str, ...]  # FFN projections whose outputs are the neurons (gate and up for gated MLPs)
    ffn_out: str  # FFN projection whose inputs are the neurons
    ffn_size_attr: str  # config attribute holding the (uniform) FFN width
    num_heads_attr: str | None = None  # classic attention: attribute of `attention`, current number of heads
    qkv: tuple[str, ...] = ()  # classic attention: projections whose outputs are the heads' q/k/v features
    qkv_packed: int = 1  # how many of q, k, v each `qkv` module holds side by side (GPT-2's c_attn: 3)
    width_attrs: tuple[str, ...] = ()  # attributes of `attention` holding the heads' total width
    q_proj: str | None = None  # GQA models: query projection (`group` heads per KV head)
    kv_proj: tuple[str, ...] = ()  # GQA models: projections whose outputs are the KV heads
    root: Literal["base_model", "decoder"] = "base_model"

    @property
    def grouped(self) -> bool:
        """True when a head unit is a KV group with its query heads, False for one classic attention head."""
        return bool(self.kv_proj)


_BERT = ArchSpec(
    layers="encoder.layer",
    attention="attention.self",
    num_heads_attr="num_attention_heads",
    head_dim_attr="attention_head_size",
    qkv=("attention.self.query", "attention.self.key", "attention.self.value"),
    width_attrs=("all_head_size",),
    attn_out="attention.output.dense",
    ffn_in=("intermediate.dense",),
    ffn_out="output.dense",
    ffn_size_attr="intermediate_size",
)

# Llama-style decoder block: self_attn.{q,k,v,o}_proj and a gated mlp.{gate,up,down}_proj.
_DECODER = ArchSpec(
    layers="layers",
    attention="self_attn",
    head_dim_attr="head_dim",
    attn_out="self_attn.o_proj",
    ffn_in=("mlp.gate_proj", "mlp.up_proj"),
    ffn_out="mlp.down_proj",
    ffn_size_attr="intermediate_size",
    q_proj="self_attn.q_proj",
    kv_proj=("self_attn.k_proj", "self_attn.v_proj"),
    root="decoder",
)

SPECS: dict[str, ArchSpec] = {
    "bert": _BERT,
    "roberta": _BERT,
    "distilbert": ArchSpec(
        layers="transformer.layer",
        attention="attention",
        num_heads_attr="n_heads",
        head_dim_attr="attention_head_size",
        qkv=("attention.q_lin", "attention.k_lin", "attention.v_lin"),
        attn_out="attention.out_lin",
        ffn_in=("ffn.lin1",),
        ffn_out="ffn.lin2",
        ffn_size_attr="hidden_dim",
    ),
    "gpt2": ArchSpec(
        layers="h",
        attention="attn",
        num_heads_attr="num_heads",
        head_dim_attr="head_dim",
        qkv=("attn.c_attn",),
        qkv_packed=3,
        width_attrs=("split_size",),
        attn_out="attn.c_proj",
        ffn_in=("mlp.c_fc",),
        ffn_out="mlp.c_proj",
        ffn_size_attr="n_inner",
    ),
    # gemma3 is the multimodal Gemma3ForConditionalGeneration: its text decoder is pruned, the vision tower is kept.
    **{name: _DECODER for name in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "gemma3")},
}


# Architectures whose blocks do not fit one ArchSpec, with why: the same refusal from `compress run` and the library.
_GEMMA4 = (
    "Gemma 4's layers are not one shape: full-attention layers use another head size (global_head_dim; with "
    "attention_k_eq_v also another KV head count and no v_proj), and with num_kv_shared_layers the last layers reuse "
    "an earlier layer's keys and values (no k_proj/v_proj of their own), so a KV group is not one unit across layers "
    "and removing one would change the cache other layers read"
)
UNSUPPORTED: dict[str, str] = {"gemma4_text": _GEMMA4, "gemma4": _GEMMA4}


def spec_for(model: nn.Module) -> ArchSpec:
    """The spec of `model`'s architecture, or a `PruneError` naming the supported ones."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in UNSUPPORTED:
        raise PruneError(f"Structured pruning does not support model_type {model_type!r}: {UNSUPPORTED[model_type]}. "
                         "Remove prune: from the recipe (its int8/int4 variants still build).")
    if model_type not in SPECS:
        heads = sorted(name for name, spec in SPECS.items() if not spec.grouped)
        groups = sorted(name for name, spec in SPECS.items() if spec.grouped)
        raise PruneError(
            f"Structured pruning does not support model_type {model_type!r}; supported: {', '.join(heads)} "
            f"(multi-head attention) and {', '.join(groups)} (grouped-query decoders). "
            "Add an ArchSpec in compress/prune/specs.py."
        )
    return SPECS[model_type]


def root_module(model: nn.Module, spec: ArchSpec) -> nn.Module:
    """The module `spec.layers` is relative to."""
    return model.get_decoder() if spec.root == "decoder" else model.base_model


def layer_list(model: nn.Module, spec: ArchSpec) -> nn.ModuleList:
    """The model's list of transformer blocks."""
    return root_module(model, spec).get_submodule(spec.layers)


def text_config(model: nn.Module):
    """The config that sizes the transformer blocks (the text config of a multimodal model, else the config)."""
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config
