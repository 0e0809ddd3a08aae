"""Fake quantization with ONNX Runtime's int8 arithmetic, so a QAT model and its QDQ export agree.

Conventions copied from `onnxruntime.quantization.quant_utils.compute_scale_zp` (the quantizer
that writes the final graph):
- weights: symmetric per output channel, int8 in [-127, 127] ([-64, 64] with `reduce_range`),
  scale = 2·max|w| / (qmax - qmin), zero point 0 — computed from the weights, not learned;
- activations: asymmetric per tensor, uint8 [0, 255] (int8 [-128, 127] if the preset asks),
  range widened to include 0, scale = (hi - lo) / (qmax - qmin), zero point = round(qmin - lo / scale)
  — learned (LSQ+-style: straight-through rounding, gradients reach scale and zero point);
- rounding is half-to-even in both torch and ORT.
"""
from __future__ import annotations

import torch
from torch import nn

ACTIVATION_RANGES = {"uint8": (0, 255), "int8": (-128, 127)}


def weight_range(reduce_range: bool) -> tuple[int, int]:
    return (-64, 64) if reduce_range else (-127, 127)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """round() forward, identity backward (straight-through estimator)."""
    return x + (torch.round(x) - x).detach()


def weight_scale(weight: torch.Tensor, reduce_range: bool) -> torch.Tensor:
    """Per-row (= per output channel of a Linear) symmetric scale, shape (rows, 1)."""
    qmin, qmax = weight_range(reduce_range)
    absmax = weight.detach().abs().amax(dim=1, keepdim=True)
    return (2 * absmax / (qmax - qmin)).clamp_min(torch.finfo(torch.float32).tiny)


def fake_quant_weight(weight: torch.Tensor, reduce_range: bool) -> torch.Tensor:
    qmin, qmax = weight_range(reduce_range)
    scale = weight_scale(weight, reduce_range)
    return torch.clamp(round_ste(weight / scale), qmin, qmax) * scale


def scale_zero_point(lo: float, hi: float, qmin: int, qmax: int) -> tuple[float, int]:
    """ORT's asymmetric parameters for the range [lo, hi] (widened to include 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / (qmax - qmin)
    if scale <= torch.finfo(torch.float32).tiny:
        return 1.0, 0
    return scale, round(qmin - lo / scale)


class ActivationQuantizer(nn.Module):
    """Per-tensor fake quantizer whose scale and zero point are trained with the model.

    Lifecycle: `observe` mode collects a sample of values (PTQ calibration), `start` turns the
    sample's percentile range into scale/zero point, then forward fake-quantizes.
    """

    def __init__(self, activation_type: str = "uint8", percentile: float = 99.99, sample_per_batch: int = 1 << 16) -> None:
        super().__init__()
        self.qmin, self.qmax = ACTIVATION_RANGES[activation_type]
        self.percentile, self.sample_per_batch = percentile, sample_per_batch
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.zero_point = nn.Parameter(torch.tensor(0.0))
        self.observing = True
        self.keep: torch.Tensor | None = None  # [batch, seq] bool while observing: only these positions count
        self._seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observing:
            values = x.detach()
            if self.keep is not None and tuple(values.shape[:2]) == tuple(self.keep.shape):
                # Padding positions are not data: in decoders (left padding) they act as attention sinks with
                # activations ~100x the real tokens' (Gemma 3: 789 vs 10 at the 99.99th percentile), and
                # counting them stretched the initial ranges 60x beyond what static PTQ calibrates.
                values = values[self.keep]
            flat = values.flatten().float()
            if flat.numel() > self.sample_per_batch:
                flat = flat[torch.randint(flat.numel(), (self.sample_per_batch,), device=flat.device)]
            self._seen.append(flat.cpu())
            return x
        scale = self.scale.abs().clamp_min(1e-8)
        zero_point = torch.clamp(round_ste(self.zero_point), self.qmin, self.qmax)
        q = torch.clamp(round_ste(x / scale) + zero_point, self.qmin, self.qmax)
        return (q - zero_point) * scale

    def start(self) -> None:
        """End calibration: initialize scale and zero point from the observed percentile range."""
        if not self._seen:
            raise RuntimeError("no activations were observed: run calibration batches through the model first")
        values = torch.cat(self._seen)
        self._seen = []
        tail = 1 - self.percentile / 100
        lo, hi = torch.quantile(values, torch.tensor([tail, 1 - tail])).tolist()
        scale, zero_point = scale_zero_point(lo, hi, self.qmin, self.qmax)
        with torch.no_grad():
            self.scale.fill_(scale)
            self.zero_point.fill_(zero_point)
        self.observing = False

    def onnx_params(self) -> tuple[float, int]:
        """(scale, zero point) exactly as the forward pass uses them."""
        return float(self.scale.detach().abs().clamp_min(1e-8)), int(torch.clamp(torch.round(self.zero_point.detach()), self.qmin, self.qmax))
