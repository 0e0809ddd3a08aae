"""4-bit weights for encoder classifiers: GatherBlockQuantized embedding tables and MatMulNBits Linear layers (ORT contrib ops).

Why: once the vocabulary is trimmed and the body is int8, the embedding tables are still the largest block of bytes in
an encoder classifier (MiniLM-L6: 52 % of its parameters are word embeddings), and the int8 body is next; 4 bits
halves either again. The search (compress.search.schemes.Int8Dynamic) chooses per table / per Linear.

Nothing here is hand-written quantization: ONNX Runtime's weight-only quantizer (`MatMulNBitsQuantizer`, RTN per block:
tables along the hidden axis, weights along the input axis) writes the GatherBlockQuantized / MatMulNBits nodes, and
its CPU kernels run them (ORT 1.32 supports 4 bits for Gather only: 8-bit tables stay with `quantize_dynamic`, a
uint8/int8 table and a DequantizeLinear after it). MatMulNBits runs with `accuracy_level` 4 (int8 activations on
the CPU's integer dot products) by default. What we add is the node selection: ORT reads an empty include list as
"every node of that type", so the nodes that must stay as they are go in its exclude list, as
`compress.quantize.lm._nbits` does for MatMuls.
"""
from __future__ import annotations

import logging
from collections.abc import Collection

import numpy as np
import onnx

GATHER_BLOCK = 32  # elements per scale along the hidden axis; ORT requires a power of two >= 16
INT4_TABLE_SHARE = 0.25  # a table is a 4-bit candidate when it holds this share of the embedding elements (int4_tables)


def _gather_tables(model: onnx.ModelProto) -> dict[str, int]:
    """Gathers that read a constant table (embeddings) -> the table's element count, in graph order."""
    sizes = {t.name: int(np.prod(t.dims)) for t in model.graph.initializer}
    return {n.name: sizes[n.input[0]] for n in model.graph.node
            if n.op_type == "Gather" and n.input and n.input[0] in sizes}


def constant_gathers(model: onnx.ModelProto) -> list[str]:
    """Gathers that read a constant table (embeddings), in graph order: what GatherBlockQuantized can replace."""
    return list(_gather_tables(model))


def int4_tables(model: onnx.ModelProto, share: float = INT4_TABLE_SHARE) -> list[str]:
    """The constant-table Gathers worth 4 bits: tables holding at least `share` of all embedding-table elements.

    Why not every table: ORT 1.32's GatherBlockQuantized kernel costs per gathered row whatever the table or block
    size -- 0.8 to 3.6 us per 384-wide row on one core on the two CPUs measured (20 to 95 us for a 26-token text),
    against ~9 us for a whole int8 Gather and its DequantizeLinear (standalone one-node graphs, 1 thread). For the
    vocabulary table that buys megabytes; for a position table (MiniLM: 512 x 384) it buys ~0.07 MB for the same
    time, and a token-type table nothing. Those stay int8 units like any other."""
    gathers = _gather_tables(model)
    total = sum(gathers.values())
    return [name for name, size in gathers.items() if total and size >= share * total]


def weight_matmuls(model: onnx.ModelProto) -> list[str]:
    """MatMuls whose second input is a constant (Linear layers), in graph order: what MatMulNBits can replace."""
    inits = {t.name for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and len(n.input) > 1 and n.input[1] in inits]


def quantize_int4(model: onnx.ModelProto, gathers: Collection[str] = (), matmuls: Collection[str] = (),
                  block_size: int = GATHER_BLOCK, accuracy_level: int | None = 4, symmetric: bool = False) -> onnx.ModelProto:
    """`model` with exactly the Gathers in `gathers` as 4-bit GatherBlockQuantized and the MatMuls in `matmuls` as 4-bit
    MatMulNBits; a table or weight whose blocked axis is not a multiple of `block_size` is padded by ORT's quantizer."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    wanted = set(gathers) | set(matmuls)
    if not wanted:
        return model
    missing = (set(gathers) - set(constant_gathers(model))) | (set(matmuls) - set(weight_matmuls(model)))
    if missing:
        raise ValueError(f"not Gathers from a constant table or MatMuls with a constant weight: {sorted(missing)}")
    others = [n.name for n in model.graph.node if n.op_type in ("Gather", "MatMul") and n.name not in wanted]
    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=symmetric, accuracy_level=accuracy_level,
                                          op_types_to_quantize=("Gather", "MatMul"), quant_axes=(("MatMul", 0), ("Gather", -1)),
                                          bits=4)
    chatter = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")  # one INFO line per node otherwise
    level = chatter.level
    chatter.setLevel(logging.ERROR)
    try:
        with np.errstate(divide="ignore", invalid="ignore"):  # ORT's RTN divides by a zero scale (all-zero block), then masks it
            quantizer = MatMulNBitsQuantizer(model, algo_config=config, nodes_to_exclude=others)
            quantizer.process()
    finally:
        chatter.setLevel(level)
    return quantizer.model.model
