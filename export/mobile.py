"""Artefacts for a minimal ONNX Runtime build on a phone or edge board, with ONNX Runtime's own tools.

- ORT format (`onnxruntime.tools.convert_onnx_models_to_ort`): the model pre-optimized and serialized for
  the minimal runtime (no ONNX protobuf parser on the device), plus the operator/type config file that a
  reduced-operator build of ONNX Runtime is compiled from (`build.sh --include_ops_by_config <file>`).
- Fixed shapes (`onnxruntime.tools.onnx_model_utils`): NPUs and delegates (NNAPI, CoreML, QNN) compile
  static graphs only, so batch and sequence length are pinned.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

import onnx
from edge_compress.export.hf_manifest import model_files
from edge_compress.export.quiet import quiet


def fix_shapes(src: Path, dst: Path, batch: int, sequence: int) -> Path:
    """Pin every [batch, sequence] input to (batch, sequence); output shapes follow where inference can tell.

    `dst` holds its weights inline (an encoder is far below protobuf's 2 GB): one file for the delegate to compile."""
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_input_shape_fixed

    model = onnx.load(str(src))
    for graph_input in model.graph.input:
        rank = len(graph_input.type.tensor_type.shape.dim)
        if rank != 2:
            raise ValueError(f"input {graph_input.name} has rank {rank}; fixed shapes expect [batch, sequence] inputs")
        make_input_shape_fixed(model.graph, graph_input.name, [batch, sequence])
    fix_output_shapes(model)
    onnx.save(model, str(dst))
    return dst


def convert_to_ort(models: list[Path], out_dir: Path, platform: str = "arm") -> tuple[list[Path], Path]:
    """ORT-format copies of `models` in `out_dir` and one reduced-build config (operators and types) for all of them.

    `platform="arm"` keeps the graph free of x86-only layout transforms and lets int8 QDQ fuse to signed kernels.
    """
    from onnxruntime.tools.convert_onnx_models_to_ort import OptimizationStyle, convert_onnx_models_to_ort

    logger = logging.getLogger("ort_format_model.utils")  # the converter sets it to DEBUG for its command line
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with tempfile.TemporaryDirectory() as tmp, quiet():
            for model in models:  # the converter takes a folder and converts every .onnx in it (weights beside it)
                for file in model_files(model):
                    shutil.copy(file, Path(tmp) / file.name)
            convert_onnx_models_to_ort(Path(tmp), output_dir=out_dir, optimization_styles=[OptimizationStyle.Fixed],
                                       target_platform=platform, enable_type_reduction=True)
    finally:
        logger.setLevel(level)
    config = out_dir / "required_operators_and_types.config"
    config.write_text(config.read_text().replace(str(out_dir.resolve()) + "/", ""))  # the header names the models: no staging paths
    return [out_dir / model.with_suffix(".ort").name for model in models], config
