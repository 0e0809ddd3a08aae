"""QAT model -> int8 ONNX: export the trained float weights, then ONNX Runtime's static quantizer with
the learned ranges (so the graph is laid out, fused and timed exactly like static PTQ's)."""
from __future__ import annotations

import copy
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from edge_compress.compress.qat.export_params import learned_params
from edge_compress.compress.qat.modules import strip_fake_quant
from edge_compress.compress.qat.train import QATConfig, quantization_aware_train
from edge_compress.compress.quantize.presets import Int8Preset
from edge_compress.compress.quantize.ptq import quantize_int8_static
from edge_compress.compress.run.measure import onnx_runner, torch_runner
from edge_compress.export.hf_manifest import MANIFEST_FILE
from torch import nn

# (model, folder) -> folder/model.onnx with its export.json: the task's export (compress.tasks.base.Task.export)
Export = Callable[[nn.Module, Path], Path]


def build_qat_onnx(qat_model: nn.Module, dst: Path, export: Export, preset: Int8Preset, feeds: list[dict]) -> Path:
    """`feeds` only let ORT's quantizer run its calibration pass; every quantized tensor gets the learned range.
    The float export's export.json goes beside `dst`: quantizing keeps the graph's input and output names."""
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export(strip_fake_quant(copy.deepcopy(qat_model)).eval(), Path(tmp))
        path = quantize_int8_static(fp32, dst, preset, feeds, "minmax", learned=learned_params(qat_model))
        shutil.copy(Path(tmp) / MANIFEST_FILE, dst.parent / MANIFEST_FILE)
    return path


def fake_quant_gap(qat_model: nn.Module, path: Path, feeds: list[dict], threads: int) -> float:
    """Max |logit difference| between the fake-quantized model and the int8 graph: ~0 when export is faithful."""
    torch_run, onnx_run = torch_runner(qat_model.eval()), onnx_runner(path, threads)
    return max(float(np.max(np.abs(torch_run(f) - onnx_run(f)))) for f in feeds)


def qat_to_onnx(model: nn.Module, tokenizer, texts: list[str], labels: list[int] | None, config: QATConfig, dst: Path,
                export: Export, preset: Int8Preset, feeds: list[dict], check_feeds: list[dict], threads: int,
                max_length: int) -> tuple[Path, dict]:
    """The whole stage: train, export with the learned ranges, and check the graph against the fake-quantized model.
    Returns the int8 model and what to record (scale movement, fake-quant vs ONNX gap)."""
    qat_model, moved = quantization_aware_train(model, tokenizer, texts, labels, config, max_length)
    path = build_qat_onnx(qat_model, dst, export, preset, feeds)
    return path, {"learned_scales": moved,
                  "fake_quant_vs_onnx_max_logit_diff": round(fake_quant_gap(qat_model, path, check_feeds, threads), 6)}


def _build_variant(inp):
    """The QAT variant of one line: trained from the line's model on the run's training texts."""
    from edge_compress.export.onnx_export import MODEL_FILE

    ctx = inp.ctx
    limit = ctx.recipe.validate_.max_length
    train = ctx.data.train
    feeds = [dict(ctx.tokenizer([t], truncation=True, max_length=limit, return_tensors="np")) for t in ctx.data.calib_texts[:8]]

    def export(model: nn.Module, folder: Path) -> Path:
        return ctx.task.export(model, ctx.tokenizer, folder, ctx.recipe.export.opset)

    return qat_to_onnx(inp.line.model, ctx.tokenizer, train.texts, train.labels, ctx.recipe.qat.to_config(ctx.preset),
                       inp.folder / MODEL_FILE, export, ctx.preset, feeds, ctx.evaluation.batches[:4], ctx.threads, limit)


def _register() -> None:
    from edge_compress.compress.run.variants import Variant, register

    register(Variant("onnx-int8-qat", "int8", _build_variant, ("text-classification",), order=70,
                     settings=lambda ctx: {"preset": ctx.preset.as_dict(), "qat": ctx.recipe.qat.model_dump()},
                     enabled=lambda ctx: ctx.recipe.qat is not None))


_register()
