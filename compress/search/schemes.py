"""What a quantizable unit is, and how a candidate with a chosen set of units at the low precision is built.

A scheme is a pair of precisions per unit: `low` (what the search wants as much of as the budget allows)
and the fallback the other units keep. Classifiers: int8 dynamic (ORT `quantize_dynamic`) or float.
Causal LMs: int4 weight-only MatMulNBits or 8-bit MatMulNBits -- the search finds the per-model
keep-8-bit list that `LMSpec.int4_keep_8bit` hand-tunes on one model and one text domain (issue 15: that
list gives +9.4 % perplexity on prose it was not tuned on). Both builds call the project's own quantizers
(compress.quantize.ptq / compress.quantize.lm), so a searched candidate is exactly what the variant would be.

Schemes are frozen dataclasses: they travel to worker processes (pickled) with each candidate.
"""
from __future__ import annotations

import tempfile
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import onnx

from compress.quantize.presets import Int8Preset
from compress.search.files import private_view

# op type -> index of its weight input: a node is an int8-dynamic unit when that input is a constant.
# MatMul/Gather are the exported graph's Linear layers and embeddings; Attention/EmbedLayerNormalization
# appear once ORT's transformer optimizer has fused the graph, and quantize_dynamic quantizes them too.
INT8_DYNAMIC_WEIGHT_INPUT = {"MatMul": 1, "Gather": 0, "Attention": 1, "EmbedLayerNormalization": 2}


class Scheme(Protocol):
    name: str

    def units(self, model: onnx.ModelProto) -> list[str]:
        """Node names that can take the low precision, in graph order."""

    def build(self, src: Path, dst: Path, low: Collection[str]) -> Path:
        """A complete model at `dst`: the units in `low` at the low precision, every other unit at the fallback."""

    def settings(self) -> dict[str, Any]:
        """What determines the build (part of the sensitivity cache key and of every trial's record)."""


@dataclass(frozen=True)
class Int8Dynamic:
    """Classifiers: int8 dynamic (weights int8, activations per call) against float, node by node.

    `embedding_bits=4` puts the embedding tables in the search space one step lower: a Gather from a constant table
    is then int4 GatherBlockQuantized when low and int8 (quantize_dynamic's Gather) otherwise, since int8 tables
    cost no measurable accuracy while float ones hold most of a trimmed encoder's bytes. With 8 (the default) a
    Gather is int8 or float like every other unit. The Gathers must be unfused: a graph whose embeddings ORT's
    optimizer fused into EmbedLayerNormalization has none (compress.search.variants re-optimizes without that fusion).

    `matmul_bits=4` does the same one step down for the Linear layers: a weight MatMul is 4-bit MatMulNBits when low
    and int8 otherwise; ORT's fused Attention (its QKV weights) has no 4-bit form, so it is int8 and not a unit.
    """
    preset: Int8Preset
    name: str = "int8-dynamic"
    embedding_bits: int = 8
    matmul_bits: int = 8

    def _four_bit(self, model: onnx.ModelProto) -> set[str]:
        """Units whose low precision is 4 bits (their fallback int8)."""
        from compress.quantize.int4 import constant_gathers, weight_matmuls

        return ({*constant_gathers(model)} if self.embedding_bits == 4 else set()) | \
            ({*weight_matmuls(model)} if self.matmul_bits == 4 else set())

    def units(self, model: onnx.ModelProto) -> list[str]:
        inits = {t.name for t in model.graph.initializer}
        candidates = [n for n in model.graph.node if n.op_type in INT8_DYNAMIC_WEIGHT_INPUT
                      and len(n.input) > INT8_DYNAMIC_WEIGHT_INPUT[n.op_type]
                      and n.input[INT8_DYNAMIC_WEIGHT_INPUT[n.op_type]] in inits]
        if self.matmul_bits == 4:  # int8 is then the floor: only the nodes with a 4-bit form choose
            four = self._four_bit(model)
            return [n.name for n in candidates if n.name in four]
        return [n.name for n in candidates]

    def build(self, src: Path, dst: Path, low: Collection[str]) -> Path:
        from compress.quantize.ptq import quantize_int8_dynamic

        with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".source-") as tmp:
            view = private_view(src, Path(tmp))
            if self.embedding_bits == 8 and self.matmul_bits == 8:
                return quantize_int8_dynamic(view, dst, self.preset, nodes=sorted(low))
            from compress.quantize.int4 import constant_gathers, quantize_int4
            from export.onnx_io import load_model, save_model

            model = load_model(view)
            four, low = self._four_bit(model), set(low)
            int4 = four & low
            if self.matmul_bits == 4:  # every int8-able node not at 4 bits is int8
                int8 = set(Int8Dynamic(self.preset).units(model)) - int4
            else:
                int8 = (low - four) | (four - low)
            gathers = set(constant_gathers(model))
            model = quantize_int4(model, sorted(int4 & gathers), sorted(int4 - gathers))
            staged = save_model(model, Path(tmp) / "int4.onnx")
            return quantize_int8_dynamic(staged, dst, self.preset, nodes=sorted(int8))

    def settings(self) -> dict[str, Any]:
        extra = {k: v for k, v in {"embedding_bits": self.embedding_bits, "matmul_bits": self.matmul_bits}.items()
                 if v != 8}  # cache keys of all-8-bit runs unchanged
        return {"scheme": self.name, "preset": self.preset.as_dict(), **extra}


@dataclass(frozen=True)
class Int4WeightOnly:
    """Causal LMs: body MatMuls at 4 bits (low) or 8 bits (fallback), MatMulNBits; the tied head per `head_bits`."""
    block_size: int = 32
    head_bits: int = 8
    accuracy_level: int | None = 4
    symmetric: bool = False
    exclude: tuple[str, ...] = field(default_factory=tuple)  # kept float in every candidate (LMSpec.exclude)
    name: str = "int4-weight-only"

    def units(self, model: onnx.ModelProto) -> list[str]:
        from compress.quantize.lm import weight_matmuls

        return weight_matmuls(model, self.exclude)

    def build(self, src: Path, dst: Path, low: Collection[str]) -> Path:
        from compress.quantize.lm import HeadSpec, quantize_weight_only

        low = set(low)
        keep_8bit = [u for u in self.units(onnx.load(str(src), load_external_data=False)) if u not in low]
        return quantize_weight_only(src, dst, 4, self.block_size, HeadSpec(self.head_bits, self.block_size, self.accuracy_level),
                                    self.accuracy_level, self.symmetric, self.exclude, keep_8bit)

    def settings(self) -> dict[str, Any]:
        return {**asdict(self), "exclude": list(self.exclude), "scheme": self.name}
