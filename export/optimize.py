"""ONNX Runtime graph fusions (attention, LayerNorm, GELU) through optimum's ORTOptimizer."""
from __future__ import annotations

from pathlib import Path

from export.onnx_export import MODEL_FILE
from export.quiet import quiet


def optimizer_supports(model_type: str) -> bool:
    """Whether ORT's transformer optimizer has fusions for this architecture (optimum's own table)."""
    from optimum.onnxruntime.utils import ORTConfigManager

    try:
        ORTConfigManager.check_optimization_supported_model(model_type, None)
    except (KeyError, NotImplementedError):
        return False
    return True


def optimize_graph(src_dir: Path, out_dir: Path, level: int = 2, fuse_embeddings: bool = True) -> Path:
    """Fuse `src_dir/model.onnx` at ORT transformer-optimizer `level` into `out_dir/model.onnx`.

    Level 2 adds attention/SkipLayerNorm/BiasGelu fusions that ORT's own session
    optimizer does not apply; level 3 also swaps GELU for its tanh approximation.
    `fuse_embeddings` turns on the EmbedLayerNormalization fusion that optimum leaves
    off by default (11 fewer nodes on MiniLM; dynamic int8 then quantizes it as one
    QEmbedLayerNormalization).  It assumes positions 0..S-1, so callers must check
    the result against the unfused model and retry without it on a mismatch.
    """
    from optimum.onnxruntime import ORTOptimizer
    from optimum.onnxruntime.configuration import OptimizationConfig

    with quiet():
        optimizer = ORTOptimizer.from_pretrained(src_dir, file_names=[MODEL_FILE])
        optimizer.optimize(OptimizationConfig(optimization_level=level, optimize_for_gpu=False,
                                               disable_embed_layer_norm_fusion=not fuse_embeddings), out_dir)
    produced = out_dir / "model_optimized.onnx"
    produced.replace(out_dir / MODEL_FILE)
    (out_dir / "ort_config.json").unlink(missing_ok=True)
    return out_dir / MODEL_FILE
