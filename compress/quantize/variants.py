"""Variant records of export, graph fusions and post-training quantization (int8 dynamic/static, SmoothQuant, weight-only).

Each record is one kind of variant for the tasks it names; classifiers and causal LMs
share the names (`onnx-int8-dynamic`, ...) where they mean the same thing, with the
build that suits the task: the LM builds keep the tied head/embedding weight-only
and calibrate static int8 on prefill *and* decode steps (compress.quantize.lm).
"""
from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from edge_compress.compress.console import info, warn
from edge_compress.compress.errors import CompressError
from edge_compress.compress.run.variants import BuildInput, Variant, register
from edge_compress.export.onnx_export import MODEL_FILE

CLS, LM, QA = ("text-classification",), ("causal-lm",), ("question-answering",)


# --- both tasks: the fp32 export ------------------------------------------------------------------------------------

def _export(inp: BuildInput) -> Path:
    return inp.ctx.task.export(inp.line.model, inp.ctx.tokenizer, inp.folder, inp.ctx.recipe.export.opset)


register(Variant("onnx-fp32", "fp32", _export, CLS + LM + QA, order=0, parent=(), parity=True, fatal=True,
                 targets=("cpu", "cuda", "tensorrt")))


# --- classifiers ----------------------------------------------------------------------------------------------------

def _optimize_enabled(ctx: Any) -> bool:
    from edge_compress.export.optimize import optimizer_supports

    if not ctx.recipe.optimize.enabled:
        return False
    model_type = ctx.ckpt.model.config.model_type
    if not optimizer_supports(model_type):
        info(f"ONNX Runtime's transformer optimizer has no fusions for '{model_type}': no onnx-fp32-optimized variant; "
             "int8 dynamic quantizes the exported graph (ORT's session still applies its generic fusions)")
        return False
    return True


def _optimize(inp: BuildInput) -> Path:
    """ORT fusions; the embedding fusion is kept only if the fused graph still reproduces the model."""
    from edge_compress.export.optimize import optimize_graph

    ctx, level = inp.ctx, inp.ctx.recipe.optimize.level
    path = optimize_graph(inp.source.parent, inp.folder, level, fuse_embeddings=True)
    try:
        ctx.task.check_parity(ctx, inp.line.model, path)
    except CompressError:
        warn("the fused embedding layer does not reproduce this model (e.g. RoBERTa-style position ids); "
             "optimizing without that fusion")
        path = optimize_graph(inp.source.parent, inp.folder, level, fuse_embeddings=False)
        ctx.task.check_parity(ctx, inp.line.model, path)
    return path


def _dynamic(inp: BuildInput) -> Path:
    from edge_compress.compress.quantize.ptq import quantize_int8_dynamic

    return quantize_int8_dynamic(inp.source, inp.folder / MODEL_FILE, inp.ctx.preset)


def static_feeds(ctx: Any) -> list[dict[str, np.ndarray]]:
    return ctx.task.calibration_feeds(ctx)


def _static_settings(ctx: Any) -> dict[str, Any]:
    spec = ctx.recipe.quantize.static
    return {"preset": ctx.preset.as_dict(), "calibration_method": spec.calibration_method,
            "calibration_samples": len(ctx.data.calib_texts)}


def _static(inp: BuildInput) -> Path:
    from edge_compress.compress.quantize.ptq import quantize_int8_static

    spec = inp.ctx.recipe.quantize.static
    return quantize_int8_static(inp.source, inp.folder / MODEL_FILE, inp.ctx.preset, static_feeds(inp.ctx),
                                spec.calibration_method, spec.percentile)


def _smoothed_static(inp: BuildInput) -> tuple[Path, dict[str, Any]]:
    """SmoothQuant a copy of the line's model on the calibration texts, export it, quantize that like the static variant."""
    from edge_compress.compress.quantize.ptq import quantize_int8_static
    from edge_compress.compress.quantize.smooth import smooth_

    ctx, spec, limit = inp.ctx, inp.ctx.recipe.quantize.static, inp.ctx.recipe.validate_.max_length
    texts = ctx.data.calib_texts[:spec.num_samples]
    batches = [dict(ctx.tokenizer(texts[i:i + 16], truncation=True, max_length=limit, padding=True, return_tensors="pt"))
               for i in range(0, len(texts), 16)]
    smoothed = copy.deepcopy(inp.line.model)
    record = smooth_(smoothed, batches, spec.smoothquant_alpha)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = ctx.task.export(smoothed, ctx.tokenizer, Path(tmp), ctx.recipe.export.opset)
        ctx.task.check_parity(ctx, inp.line.model, fp32)
        path = quantize_int8_static(fp32, inp.folder / MODEL_FILE, ctx.preset, static_feeds(ctx), spec.calibration_method,
                                    spec.percentile)
    return path, {"smoothquant": record}


register(Variant("onnx-fp32-optimized", "fp32", _optimize, CLS + QA, order=10, enabled=_optimize_enabled,
                 targets=("cpu", "cuda")))
register(Variant("onnx-int8-dynamic", "int8", _dynamic, CLS + QA, order=20, parent=("onnx-fp32-optimized", "onnx-fp32"),
                 settings=lambda ctx: {"preset": ctx.preset.as_dict()}, enabled=lambda ctx: ctx.recipe.quantize.dynamic.enabled))
register(Variant("onnx-int8-static", "int8", _static, CLS + QA, order=30, settings=_static_settings,
                 enabled=lambda ctx: ctx.recipe.quantize.static.enabled))
register(Variant("onnx-int8-static-smoothquant", "int8", _smoothed_static, CLS, order=40, settings=_static_settings,
                 enabled=lambda ctx: ctx.recipe.quantize.static.enabled
                 and ctx.recipe.quantize.static.smoothquant_alpha is not None))


# --- causal LMs -----------------------------------------------------------------------------------------------------

def _head(ctx: Any):
    from edge_compress.compress.quantize.lm import HeadSpec

    spec = ctx.recipe.lm
    return HeadSpec(spec.head_bits, spec.block_size, spec.accuracy_level or None)


def _lm_dynamic(inp: BuildInput) -> Path:
    from edge_compress.compress.quantize.lm import quantize_dynamic_lm

    return quantize_dynamic_lm(inp.source, inp.folder / MODEL_FILE, inp.ctx.preset, _head(inp.ctx), inp.ctx.recipe.lm.exclude)


def _lm_static(inp: BuildInput) -> Path:
    from edge_compress.compress.quantize.lm import quantize_static_lm
    from edge_compress.compress.tasks.causal_lm.calibration import calibration_feeds

    ctx, spec = inp.ctx, inp.ctx.recipe.lm
    feeds = calibration_feeds(inp.source, ctx.tokenizer, ctx.data.calib_texts, spec.calib_max_length, spec.calib_decode_steps,
                              ctx.threads)
    return quantize_static_lm(inp.source, inp.folder / MODEL_FILE, ctx.preset, _head(ctx), feeds, spec.exclude)


def _smoothed_source(inp: BuildInput) -> tuple[Path, dict[str, Any]]:
    """The SmoothQuant-ed copy of the line's model, exported once per line into scratch space both SmoothQuant variants share."""
    from edge_compress.compress.quantize.smooth import smooth_

    scratch = inp.line.scratch
    if "smoothquant" not in scratch:
        ctx, spec = inp.ctx, inp.ctx.recipe.lm
        batches = [dict(ctx.tokenizer(t, truncation=True, max_length=spec.calib_max_length, return_tensors="pt"))
                   for t in ctx.data.calib_texts]
        model = copy.deepcopy(inp.line.model)
        record = smooth_(model, batches, spec.smoothquant_alpha)
        folder = tempfile.TemporaryDirectory(prefix="smoothquant-")
        path = ctx.task.export(model, ctx.tokenizer, Path(folder.name), ctx.recipe.export.opset)
        scratch["smoothquant"] = (folder, path, record)
    _, path, record = scratch["smoothquant"]
    return path, record


def _lm_smoothed(quantize):
    def build(inp: BuildInput) -> tuple[Path, dict[str, Any]]:
        source, record = _smoothed_source(inp)
        return quantize(BuildInput(inp.ctx, inp.line, inp.folder, source, inp.settings)), {"smoothquant": record}
    return build


def _lm_settings(ctx: Any) -> dict[str, Any]:
    return {"preset": ctx.preset.as_dict(), "head": vars(_head(ctx))}


def _lm_static_settings(ctx: Any) -> dict[str, Any]:
    return {**_lm_settings(ctx), "calibration": "minmax, prefill + decode steps", "calibration_texts": len(ctx.data.calib_texts),
            "decode_steps": ctx.recipe.lm.calib_decode_steps}


def _weight_only(bits: int):
    def build(inp: BuildInput) -> Path:
        from edge_compress.compress.quantize.lm import quantize_weight_only

        spec = inp.ctx.recipe.lm
        return quantize_weight_only(inp.source, inp.folder / MODEL_FILE, bits, spec.block_size, _head(inp.ctx),
                                    spec.accuracy_level or None, spec.symmetric, spec.exclude,
                                    spec.int4_keep_8bit if bits == 4 else ())
    return build


def _weight_only_settings(bits: int):
    def settings(ctx: Any) -> dict[str, Any]:
        spec = ctx.recipe.lm
        return {"bits": bits, "block_size": spec.block_size, "accuracy_level": spec.accuracy_level, "symmetric": spec.symmetric,
                "head": vars(_head(ctx)), "method": "RTN (onnxruntime MatMulNBits)",
                **({"keep_8bit": spec.int4_keep_8bit} if bits == 4 else {})}
    return settings


def _smoothquant(ctx: Any) -> bool:
    return ctx.recipe.lm.smoothquant_alpha is not None


register(Variant("onnx-int8-dynamic", "int8", _lm_dynamic, LM, order=20, settings=_lm_settings,
                 enabled=lambda ctx: ctx.recipe.lm.int8_dynamic))
register(Variant("onnx-int8-static", "int8", _lm_static, LM, order=30, settings=_lm_static_settings,
                 enabled=lambda ctx: ctx.recipe.lm.int8_static))
register(Variant("onnx-int8-dynamic-smoothquant", "int8", _lm_smoothed(_lm_dynamic), LM, order=40, settings=_lm_settings,
                 enabled=lambda ctx: _smoothquant(ctx) and ctx.recipe.lm.int8_dynamic))
register(Variant("onnx-int8-static-smoothquant", "int8", _lm_smoothed(_lm_static), LM, order=45, settings=_lm_static_settings,
                 enabled=lambda ctx: _smoothquant(ctx) and ctx.recipe.lm.int8_static))
register(Variant("onnx-int8-weight-only", "int8", _weight_only(8), LM, order=50, settings=_weight_only_settings(8),
                 enabled=lambda ctx: ctx.recipe.lm.int8_weight_only))
register(Variant("onnx-int4-weight-only", "int4", _weight_only(4), LM, order=60, settings=_weight_only_settings(4),
                 enabled=lambda ctx: ctx.recipe.lm.int4_weight_only))
