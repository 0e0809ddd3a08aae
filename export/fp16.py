"""fp32 -> fp16 ONNX with ONNX Runtime's converter, keeping float32 inputs and outputs.

`keep_io_types` puts Casts at the graph's edges, so callers feed and read the
same arrays as for the fp32 model (and logits are compared in fp32); ops the
converter knows to be unsafe in fp16 stay in fp32 (its default block list).
"""
from __future__ import annotations

from pathlib import Path

import onnx


def convert_to_fp16(src: Path, dst: Path) -> Path:
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    dst.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(dst))
    return dst
