"""Load/save ONNX models of any size: protobuf caps one file at 2 GB, so big ones keep their weights beside it."""
from __future__ import annotations

from pathlib import Path

import onnx

PROTOBUF_LIMIT = 1_900_000_000


def save_model(model: onnx.ModelProto, path: Path) -> Path:
    """Write `path` (and `path`_data when the weights would not fit in one protobuf); stale data files are removed."""
    data = path.with_name(path.name + "_data")
    large = model.ByteSize() > PROTOBUF_LIMIT if _all_inline(model) else True
    if large:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
    else:
        data.unlink(missing_ok=True)
        onnx.save_model(model, str(path))
    return path


def _all_inline(model: onnx.ModelProto) -> bool:
    return not any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer)


def load_model(path: Path) -> onnx.ModelProto:
    return onnx.load(str(path), load_external_data=True)
