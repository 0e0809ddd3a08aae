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
from edge_compress.compress.quantize.presets import Int8Preset
from edge_compress.compress.search.files import private_view

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

    `embedding_bits=4` puts the embedding tables in the search space one step lower: a Gather from a large constant
    table (the vocabulary; `int4_tables` says why small ones are left out)
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
        from edge_compress.compress.quantize.int4 import int4_tables, weight_matmuls

        return ({*int4_tables(model)} if self.embedding_bits == 4 else set()) | \
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
        from edge_compress.compress.quantize.ptq import quantize_int8_dynamic

        with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".source-") as tmp:
            view = private_view(src, Path(tmp))
            if self.embedding_bits == 8 and self.matmul_bits == 8:
                return quantize_int8_dynamic(view, dst, self.preset, nodes=sorted(low))
            from edge_compress.compress.quantize.int4 import constant_gathers, quantize_int4
            from edge_compress.export.onnx_io import load_model, save_model

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
    """Causal LMs: body MatMuls at 4 bits (low) or 8 bits (fallback), MatMulNBits; the tied head per `head_bits`.

    Units are single projections: a MatMul ORT's fusions packed from several (q/k/v, gate/up) counts as its parts,
    since the hand-tuned list (and any list worth finding) splits them (v at 8 bits, q/k at 4).

    `prepare` quantizes the whole body once at 4 and once at 8 bits (`parts`); every candidate is then assembled by
    taking its low units' nodes from the 4-bit copy and the rest from the 8-bit one -- the same bytes a fresh build
    writes, without re-quantizing a 270M-parameter model (and its 262k x 640 tied table) per candidate."""
    block_size: int = 32
    head_bits: int = 8
    accuracy_level: int | None = 4
    symmetric: bool = False
    exclude: tuple[str, ...] = field(default_factory=tuple)  # kept float in every candidate (LMSpec.exclude)
    name: str = "int4-weight-only"
    parts: str | None = None  # folder with all-4-bit / all-8-bit copies of the source (`prepare`); not a setting

    def units(self, model: onnx.ModelProto) -> list[str]:
        from edge_compress.compress.quantize.lm import weight_matmuls
        from edge_compress.export.lm_export import PACKED_SEPARATOR

        return [part for name in weight_matmuls(model, self.exclude) for part in name.split(PACKED_SEPARATOR)]

    def build(self, src: Path, dst: Path, low: Collection[str]) -> Path:
        if self.parts is not None:
            return assemble_int4(Path(self.parts), dst, low)
        return self._quantize(src, dst, set(low))

    def prepare(self, src: Path, folder: Path) -> Int4WeightOnly:
        """This scheme with `parts` built in `folder` (the caller removes it): every body MatMul at 4 bits, then at 8."""
        import dataclasses

        folder.mkdir(parents=True, exist_ok=True)
        units = self.units(onnx.load(str(src), load_external_data=False))
        self._quantize(src, folder / PARTS_LOW, set(units))
        self._quantize(src, folder / PARTS_FALLBACK, set())
        return dataclasses.replace(self, parts=str(folder))

    def saved_bytes(self) -> dict[str, int]:
        """Bytes each unit saves at 4 bits instead of 8 (weights, scales, zero points), read from the prepared copies:
        k/v are an eighth of gate/up/down on Gemma, so the size objective wants sensitivity per byte, not per unit."""
        if self.parts is None:
            raise ValueError("saved_bytes needs the prepared copies: call prepare() first")
        sizes = []
        for name in (PARTS_FALLBACK, PARTS_LOW):
            model = onnx.load(str(Path(self.parts) / name), load_external_data=False)
            nbytes = {t.name: _nbytes(t) for t in model.graph.initializer}
            sizes.append({_unit_of(n): sum(nbytes.get(i, 0) for i in n.input) for n in model.graph.node if _unit_of(n)})
        return {unit: eight - sizes[1].get(unit, eight) for unit, eight in sizes[0].items()}

    def _quantize(self, src: Path, dst: Path, low: set[str]) -> Path:
        from edge_compress.compress.quantize.lm import HeadSpec, quantize_weight_only

        keep_8bit = [u for u in self.units(onnx.load(str(src), load_external_data=False)) if u not in low]
        return quantize_weight_only(src, dst, 4, self.block_size, HeadSpec(self.head_bits, self.block_size, self.accuracy_level),
                                    self.accuracy_level, self.symmetric, self.exclude, keep_8bit, unpack_all=True)

    def settings(self) -> dict[str, Any]:
        settings = {**asdict(self), "exclude": list(self.exclude), "scheme": self.name}
        settings.pop("parts")  # where the copies live does not change what a candidate is (nor the cache key)
        return settings


PARTS_LOW, PARTS_FALLBACK = "all-low.onnx", "all-fallback.onnx"


def assemble_int4(parts: Path, dst: Path, low: Collection[str]) -> Path:
    """The all-8-bit copy with each unit in `low` (a MatMul's name before quantization) swapped for its 4-bit node.

    Nodes are matched by the tensor they write (quantizers keep a node's output, not its name); the swapped-out
    node's initializers go, the swapped-in one's come from the 4-bit copy."""
    from edge_compress.export.onnx_io import load_model, save_model

    model = load_model(parts / PARTS_FALLBACK)
    low = set(low)
    if low:
        four = load_model(parts / PARTS_LOW)
        four_by_output = {n.output[0]: n for n in four.graph.node}
        four_inits = {t.name: t for t in four.graph.initializer}
        graph = model.graph
        swap = {i: four_by_output[n.output[0]] for i, n in enumerate(graph.node) if _unit_of(n) in low}
        missing = low - {_unit_of(graph.node[i]) for i in swap}
        if missing:
            raise ValueError(f"units not in the quantized copies (not weight MatMuls of this graph?): {sorted(missing)[:5]}")
        dropped = {name for i in swap for name in graph.node[i].input}
        for i, node in swap.items():
            graph.node[i].CopyFrom(node)
        # 4-bit and 8-bit copies name a weight's scales alike: every initializer a swapped-in node reads is the 4-bit one
        needed = {name for node in swap.values() for name in node.input if name in four_inits}
        read = {name for node in graph.node for name in node.input}
        kept = [t for t in graph.initializer if t.name not in needed and (t.name not in dropped or t.name in read)]
        del graph.initializer[:]
        graph.initializer.extend(kept)
        graph.initializer.extend(four_inits[name] for name in sorted(needed))
    return save_model(model, dst)


def _nbytes(tensor: onnx.TensorProto) -> int:
    count = 1
    for dim in tensor.dims:
        count *= dim
    return count * onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize


def _unit_of(node: onnx.NodeProto) -> str | None:
    """The MatMul a MatMulNBits node was made from: ORT names it `<matmul>_Q<bits>`."""
    if node.op_type != "MatMulNBits" or "_Q" not in node.name:
        return None
    return node.name.rsplit("_Q", 1)[0]
