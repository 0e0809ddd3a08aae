"""QAT versions of the layers ONNX Runtime's static int8 quantizer touches, and the swap in and out.

Which layers: exactly those `compress.quantize.ptq.quantize_int8_static` quantizes, so training sees
the arithmetic the exported graph runs —
- every `nn.Linear` applied to a sequence (exported as MatMul): input per tensor, weight per channel;
  a Linear applied to a 2-D input (pooler, classifier) exports as Gemm and stays float;
- every `nn.Embedding` table (exported as Gather), subclasses included (Gemma scales its output):
  uint8 per tensor, like an activation.
Linears reading the same tensor (query/key/value) share one input quantizer: in the graph they
read one QuantizeLinear.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from edge_compress.compress.qat.fake_quant import (
    ACTIVATION_RANGES,
    ActivationQuantizer,
    fake_quant_weight,
    round_ste,
    scale_zero_point,
)
from edge_compress.export.onnx_export import linear_from_conv1d
from torch import nn
from torch.func import functional_call
from transformers.pytorch_utils import Conv1D


class QuantLinear(nn.Module):
    def __init__(self, linear: nn.Linear, input_quantizer: ActivationQuantizer, reduce_range: bool) -> None:
        super().__init__()
        self.linear, self.input_quantizer, self.reduce_range = linear, input_quantizer, reduce_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.input_quantizer(x), fake_quant_weight(self.linear.weight, self.reduce_range), self.linear.bias)


class QuantEmbedding(nn.Module):
    """Embedding whose table is fake-quantized asymmetrically per tensor from its own min/max."""

    def __init__(self, embedding: nn.Embedding, activation_type: str) -> None:
        super().__init__()
        self.embedding = embedding
        self.qmin, self.qmax = ACTIVATION_RANGES[activation_type]

    def table_params(self) -> tuple[float, int]:
        weight = self.embedding.weight.detach()
        return scale_zero_point(float(weight.min()), float(weight.max()), self.qmin, self.qmax)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        scale, zero_point = self.table_params()
        q = torch.clamp(round_ste(self.embedding.weight / scale) + zero_point, self.qmin, self.qmax)
        # The wrapped module's own forward, on the fake-quantized table: keeps what a subclass adds.
        return functional_call(self.embedding, {"weight": (q - zero_point) * scale}, (ids,))


def quantized_linears(model: nn.Module, calibration_batches: list[dict[str, torch.Tensor]]) -> dict[str, list[str]]:
    """Linears the exporter turns into MatMul (applied to >2-D inputs), grouped by the tensor they read."""
    groups: dict[tuple, list[str]] = {}
    alive: list[torch.Tensor] = []  # held so a freed tensor's memory cannot be reused by another input
    hooks = []

    def record(name: str):
        def hook(_module, args):
            x = args[0]
            if x.dim() > 2:
                alive.append(x)
                groups.setdefault((x.data_ptr(), tuple(x.shape), x.stride()), []).append(name)
        return hook

    for name, module in model.named_modules():
        if type(module) is nn.Linear:
            hooks.append(module.register_forward_pre_hook(record(name)))
    try:
        with torch.no_grad():
            model(**{k: v for k, v in calibration_batches[0].items() if k != "labels"})
    finally:
        for hook in hooks:
            hook.remove()
    return {names[0]: names for names in dict.fromkeys(tuple(n) for n in groups.values())}


def insert_fake_quant(model: nn.Module, calibration_batches: list[dict[str, torch.Tensor]], activation_type: str,
                      reduce_range: bool, percentile: float) -> nn.Module:
    """Swap in QuantLinear/QuantEmbedding (in place) and initialize activation ranges on the batches."""
    for name, module in list(model.named_modules()):
        if isinstance(module, Conv1D):  # GPT-2: the same layer as nn.Linear, which is how the exporter writes it too
            model.set_submodule(name, linear_from_conv1d(module))
    check_supported(model)
    for names in quantized_linears(model, calibration_batches).values():
        shared = ActivationQuantizer(activation_type, percentile)
        for name in names:
            model.set_submodule(name, QuantLinear(model.get_submodule(name), shared, reduce_range))
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Embedding):
            model.set_submodule(name, QuantEmbedding(module, activation_type))
    quantizers = activation_quantizers(model)
    if not quantizers:
        raise ValueError("it has no nn.Linear layer applied to token sequences: nothing to quantize")
    with torch.no_grad():
        for batch in calibration_batches:
            for quantizer in quantizers:
                quantizer.keep = batch["attention_mask"].bool() if "attention_mask" in batch else None
            model(**{k: v for k, v in batch.items() if k != "labels"})
    for quantizer in quantizers:
        quantizer.keep = None
        quantizer.start()
    return model


def check_supported(model: nn.Module) -> None:
    """Layers with a matrix weight that are not Linear/Embedding (e.g. GPT-2's Conv1D) would stay float silently."""
    unsupported = sorted({type(m).__name__ for m in model.modules() if type(m) not in (nn.Linear, Conv1D)
                          and not isinstance(m, nn.Embedding) and isinstance(getattr(m, "weight", None), torch.Tensor) and m.weight.dim() == 2})
    if unsupported:
        raise ValueError(f"it has weight layers of type {', '.join(unsupported)}, which QAT cannot quantize yet "
                         "(only nn.Linear, GPT-2's Conv1D and nn.Embedding)")


def activation_quantizers(model: nn.Module) -> list[ActivationQuantizer]:
    return list({id(m): m for m in model.modules() if isinstance(m, ActivationQuantizer)}.values())


def strip_fake_quant(model: nn.Module) -> nn.Module:
    """Put the plain (trained) Linear/Embedding modules back, in place: the float graph to export."""
    for name, module in list(model.named_modules()):
        if isinstance(module, QuantLinear):
            model.set_submodule(name, module.linear)
        elif isinstance(module, QuantEmbedding):
            model.set_submodule(name, module.embedding)
    return model
