"""4-bit embedding tables: ONNX Runtime's GatherBlockQuantized (com.microsoft) in place of a Gather from a constant table.

Why: once the vocabulary is trimmed and the body is int8, the embedding tables are still the largest block of bytes in
an encoder classifier (MiniLM-L6: 52 % of its parameters are word embeddings); int8 (what `quantize_dynamic` does to
a Gather: a uint8/int8 table and a DequantizeLinear after it) halves them again at 4 bits.

Nothing here is hand-written quantization: ONNX Runtime's weight-only quantizer (`MatMulNBitsQuantizer` with
`op_types_to_quantize=("Gather",)`, RTN per block along the hidden axis) writes the GatherBlockQuantized node, and its
CPU kernel runs it (ORT 1.32 supports 4 bits for Gather only: 8-bit tables stay with `quantize_dynamic`). What we add
is the node selection: ORT reads an empty include list as "every node of that type", so the Gathers that must stay as
they are go in its exclude list, as `compress.quantize.lm._nbits` does for MatMuls.
"""
from __future__ import annotations

import logging
from collections.abc import Collection

import numpy as np
import onnx

GATHER_BLOCK = 32  # elements per scale along the hidden axis; ORT requires a power of two >= 16


def constant_gathers(model: onnx.ModelProto) -> list[str]:
    """Gathers that read a constant table (embeddings), in graph order: what GatherBlockQuantized can replace."""
    inits = {t.name for t in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type == "Gather" and n.input and n.input[0] in inits]


def quantize_gathers_int4(model: onnx.ModelProto, names: Collection[str], block_size: int = GATHER_BLOCK,
                          symmetric: bool = False) -> onnx.ModelProto:
    """`model` with exactly the Gathers in `names` as 4-bit GatherBlockQuantized (blocks along the last axis of the
    table); a table whose hidden size is not a multiple of `block_size` is refused by ORT's quantizer (AssertionError)."""
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    wanted = set(names)
    if not wanted:
        return model
    missing = wanted - set(constant_gathers(model))
    if missing:
        raise ValueError(f"not Gathers from a constant table: {sorted(missing)}")
    others = [n.name for n in model.graph.node if n.op_type == "Gather" and n.name not in wanted]
    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=symmetric, op_types_to_quantize=("Gather",),
                                          quant_axes=(("Gather", -1),), bits=4)
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
