"""SmoothQuant: move activation outliers into the weights before int8 quantization with activations.

Why: per-tensor int8 activation scales are set by a few outlier channels (decoders such as Gemma carry
"massive activations" of several thousand), so every other channel keeps only a few levels. SmoothQuant
(Xiao et al., 2023) divides each input channel j of a Linear by s_j = max|X_j|^a / max|W_j|^(1-a) and
multiplies the weight's column j by s_j: the float model is unchanged, the activation range is flattened,
and per-channel weight quantization absorbs the moved range. The division is folded into whatever
produces the input (a LayerNorm/RMSNorm's gain, or the previous Linear's output rows), so the exported
graph has no extra op.

Hand-written because no maintained library does this on a transformers model for ONNX export:
llm-compressor's SmoothQuantModifier (same mappings, the reference for these) is tied to its compressed-
tensors pipeline, neural-compressor 3.x's targets IPEX, and ORT's `SmoothQuant` option needs the
neural-compressor 2.x ONNX adaptor.

Per-architecture knowledge is the declarative `SMOOTH_MAPS` table: for each model type, which module
(relative to a transformer block) feeds which Linears.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Smoothing:
    """`source` (a norm or a Linear, relative to a block) produces the input every `targets` Linear reads."""
    source: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class SmoothMap:
    blocks: str  # the ModuleList holding the transformer blocks, e.g. "layers" (matched as a name suffix)
    smoothings: tuple[Smoothing, ...]
    norm_offset: float = 0.0  # Gemma's RMSNorm multiplies by (offset + weight)


_LLAMA = SmoothMap("layers", (
    Smoothing("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    Smoothing("post_attention_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
    Smoothing("mlp.up_proj", ("mlp.down_proj",)),
))
_GEMMA3 = SmoothMap("layers", (
    Smoothing("input_layernorm", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
    Smoothing("pre_feedforward_layernorm", ("mlp.gate_proj", "mlp.up_proj")),
    Smoothing("mlp.up_proj", ("mlp.down_proj",)),
), norm_offset=1.0)

SMOOTH_MAPS: dict[str, SmoothMap] = {
    "llama": _LLAMA, "mistral": _LLAMA, "qwen2": _LLAMA, "qwen3": _LLAMA,
    "gemma": SmoothMap("layers", _LLAMA.smoothings, norm_offset=1.0),
    "gemma2": _GEMMA3, "gemma3_text": _GEMMA3,
    "gemma4_text": SmoothMap("layers", _GEMMA3.smoothings),  # Gemma 4's RMSNorm multiplies by its weight alone
    "gpt2": SmoothMap("h", (Smoothing("ln_1", ("attn.c_attn",)), Smoothing("ln_2", ("mlp.c_fc",)))),
}


class SmoothError(ValueError):
    """The architecture has no smoothing map, or the model does not have the modules its map names."""


def smooth_(model: nn.Module, batches: list[dict[str, torch.Tensor]], alpha: float = 0.5) -> dict:
    """Smooth `model` in place with statistics from `batches`; return what was done (for the report).

    The float outputs do not change (up to rounding); callers export the smoothed copy and quantize that.
    """
    if not 0.0 <= alpha <= 1.0:
        raise SmoothError(f"SmoothQuant alpha must be in [0, 1], got {alpha}")
    model_type = getattr(model.config, "model_type", type(model).__name__)
    spec = SMOOTH_MAPS.get(model_type)
    if spec is None:
        raise SmoothError(f"no SmoothQuant map for '{model_type}' (known: {', '.join(sorted(SMOOTH_MAPS))}); "
                          "add one to compress.quantize.smooth.SMOOTH_MAPS or turn smoothing off")
    groups = _resolve(model, spec)
    maxima = _input_abs_max(model, [targets[0] for _, targets in groups], batches)
    scales = []
    with torch.no_grad():
        for (source, targets), x_max in zip(groups, maxima):
            w_max = torch.stack([_input_channels(t).abs().amax(dim=0) for t in targets]).amax(dim=0)
            s = (x_max.clamp(min=1e-5).pow(alpha) / w_max.clamp(min=1e-5).pow(1 - alpha)).clamp(min=1e-5)
            _divide_output(source, s, spec.norm_offset)
            for target in targets:
                _input_channels(target).mul_(s)
            scales.append(s)
    flat = torch.cat(scales)
    return {"method": "SmoothQuant", "alpha": alpha, "smoothed_inputs": len(groups),
            "scale_min": round(float(flat.min()), 4), "scale_max": round(float(flat.max()), 4),
            "activation_abs_max_before": round(float(torch.stack([m.max() for m in maxima]).max()), 2)}


def _resolve(model: nn.Module, spec: SmoothMap) -> list[tuple[nn.Module, list[nn.Module]]]:
    blocks = [m for name, m in model.named_modules() if isinstance(m, nn.ModuleList) and name.split(".")[-1] == spec.blocks]
    if not blocks:
        raise SmoothError(f"the model has no '{spec.blocks}' block list its SmoothQuant map expects")
    groups = []
    for block in blocks[0]:
        for smoothing in spec.smoothings:
            try:
                groups.append((block.get_submodule(smoothing.source), [block.get_submodule(t) for t in smoothing.targets]))
            except AttributeError as err:
                raise SmoothError(f"SmoothQuant map mismatch: {err}") from err
    return groups


def _input_channels(layer: nn.Module) -> torch.Tensor:
    """The weight viewed as [out, in]: nn.Linear stores it so, GPT-2's Conv1D transposed (a view, edits write through)."""
    return layer.weight if isinstance(layer, nn.Linear) else layer.weight.t()


def _divide_output(source: nn.Module, s: torch.Tensor, norm_offset: float) -> None:
    """Divide each output channel of `source` by s: a Linear's weight rows and bias, or a norm's gain and bias."""
    if isinstance(source, nn.Linear) or type(source).__name__ == "Conv1D":
        _input_channels(source).div_(s[:, None])  # [out, in] view: output channel j is row j
    else:  # LayerNorm / RMSNorm: y = norm(x) * (offset + weight) [+ bias]
        source.weight.copy_((norm_offset + source.weight) / s - norm_offset)
    if getattr(source, "bias", None) is not None:
        source.bias.div_(s)


def _input_abs_max(model: nn.Module, layers: list[nn.Module], batches: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
    """Per input channel max |x| seen by each layer over the batches (padding positions included)."""
    maxima: list[torch.Tensor | None] = [None] * len(layers)

    def hook(index: int):
        def record(_module, args):
            x = args[0].detach().abs().reshape(-1, args[0].shape[-1]).amax(dim=0).float()
            maxima[index] = x if maxima[index] is None else torch.maximum(maxima[index], x)
        return record

    handles = [layer.register_forward_pre_hook(hook(i)) for i, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            for batch in batches:
                model(**{k: v for k, v in batch.items() if k != "labels"})
    finally:
        for handle in handles:
            handle.remove()
    if any(m is None for m in maxima):
        raise SmoothError("some smoothed layers never ran on the calibration batches")
    return maxima
