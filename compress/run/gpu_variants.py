"""Variants only a GPU target needs (the target table's fp16 row): built when cuda or tensorrt is available."""
from __future__ import annotations

from pathlib import Path

from edge_compress.compress.run.variants import BuildInput, Variant, register


def _fp16(inp: BuildInput) -> Path:
    from edge_compress.export.fp16 import convert_to_fp16

    return convert_to_fp16(inp.source, inp.folder / "model.onnx")


# From the fused graph when there is one: ORT's fused attention and LayerNorm ops have CUDA fp16 kernels.
register(Variant("onnx-fp16", "fp16", _fp16, ("text-classification",), order=80, parent=("onnx-fp32-optimized", "onnx-fp32"),
                 settings=lambda ctx: {"keep_io_types": True}, targets=("cpu", "cuda", "tensorrt"),
                 built_for=("cuda", "tensorrt")))
