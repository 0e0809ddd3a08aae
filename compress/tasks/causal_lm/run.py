"""The causal-LM stage of `compress run`: export, build variants, validate each on the same text.

Returns report entries in the classification report's schema (name, path, format,
precision, provider, metrics, latency_ms, latency_ms_batch, size_bytes, params,
error, graph, settings), so compress.report.writer's select/add_deltas/write_report work
unchanged.  latency_ms is decode time per token at batch 1; latency_ms_batch per
decode step at `spec.batch_size` prompts.
"""
from __future__ import annotations

import copy
import json
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch

from compress.checkpoint import Checkpoint, load_checkpoint
from compress.console import info, warn
from compress.environment import library_versions
from compress.errors import CompressError
from compress.tasks.causal_lm.calibration import calibration_feeds
from compress.tasks.causal_lm.data import load_lm_text
from compress.tasks.causal_lm.evaluate import LMEvaluation, LMOutputs, lm_metrics
from compress.tasks.causal_lm.export import export_causal_lm
from compress.quantize.lm import HeadSpec, quantize_dynamic_lm, quantize_static_lm, quantize_weight_only
from export.ort_lm import load_ort_lm
from compress.tasks.causal_lm.spec import LMSpec
from compress.quantize.presets import Int8Preset, preset_for
from compress.tasks.causal_lm.task import CausalLM
from compress.run.measure import onnx_params, onnx_size, torch_params
from export.hardware import cpu_info
from export.onnx_export import MODEL_FILE
from export.runtime import graph_op_counts

QUANT_OPS = {"MatMulNBits", "GatherBlockQuantized", "MatMulInteger", "DynamicQuantizeLinear", "QuantizeLinear",
             "DequantizeLinear", "MatMul"}


def build_and_validate_lm(model_source: str, stage_dir: Path, eval_source: str, calib_source: str | None = None,
                          spec: LMSpec | None = None, threads: int = 2, preset: Int8Preset | None = None,
                          text_column: str | None = None, trust_remote_code: bool = False, opset: int | None = None
                          ) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """(baseline entry, variant entries, eval info); variant folders are written under `stage_dir/variants/`."""
    spec = spec or LMSpec()
    preset = preset or preset_for(cpu_info())
    torch.set_num_threads(threads)
    ckpt = load_checkpoint(model_source, CausalLM(), trust_remote_code)
    eval_text = load_lm_text(eval_source, text_column)
    calib_texts, calib_from = _calibration(calib_source, eval_text.texts, spec)
    max_positions = getattr(ckpt.model.config, "max_position_embeddings", None) or getattr(ckpt.model.config, "n_positions", None)
    evaluation = LMEvaluation(eval_text.texts, ckpt.tokenizer, spec, max_positions)
    info(f"{len(evaluation.ids)} eval tokens from {eval_text.source} (context {spec.context}, stride {min(spec.stride, spec.context)}); "
         f"{len(evaluation.prompts)} prompts; {threads} threads")
    builder = _Builder(stage_dir, ckpt, evaluation, spec, threads)
    baseline = builder.baseline()
    fp32 = builder.variant("onnx-fp32", "fp32", lambda d: export_causal_lm(ckpt.model, ckpt.tokenizer, d, opset), fatal=True)
    head = HeadSpec(spec.head_bits, spec.block_size, spec.accuracy_level or None)
    if spec.int8_dynamic:
        builder.variant("onnx-int8-dynamic", "int8", lambda d: quantize_dynamic_lm(fp32, d / MODEL_FILE, preset, head, spec.exclude),
                        settings={"preset": preset.as_dict(), "head": vars(head)})
    if spec.int8_static:
        def static(d: Path) -> Path:
            feeds = calibration_feeds(fp32, ckpt.tokenizer, calib_texts, spec.calib_max_length, spec.calib_decode_steps, threads)
            return quantize_static_lm(fp32, d / MODEL_FILE, preset, head, feeds, spec.exclude)
        builder.variant("onnx-int8-static", "int8", static,
                        settings={"preset": preset.as_dict(), "head": vars(head), "calibration": "minmax, prefill + decode steps",
                                  "calibration_texts": len(calib_texts), "decode_steps": spec.calib_decode_steps})
    if spec.smoothquant_alpha is not None and (spec.int8_dynamic or spec.int8_static):
        builder.smoothquant_variants(preset, head, calib_texts, opset)
    for bits, enabled in ((8, spec.int8_weight_only), (4, spec.int4_weight_only)):
        if enabled:
            builder.variant(f"onnx-int{bits}-weight-only", f"int{bits}",
                            lambda d, b=bits: quantize_weight_only(fp32, d / MODEL_FILE, b, spec.block_size, head,
                                                                   spec.accuracy_level or None, spec.symmetric, spec.exclude,
                                                                   spec.int4_keep_8bit if b == 4 else ()),
                            settings={"bits": bits, "block_size": spec.block_size, "accuracy_level": spec.accuracy_level,
                                      "symmetric": spec.symmetric, "head": vars(head), "method": "RTN (onnxruntime MatMulNBits)",
                                      **({"keep_8bit": spec.int4_keep_8bit} if bits == 4 else {})})
    eval_info = {"source": eval_text.source, "samples": len(eval_text.texts), "tokens": len(evaluation.ids),
                 "context": spec.context, "stride": min(spec.stride, spec.context), "bos_per_window": len(evaluation.prefix) > 0, "prompts": len(evaluation.prompts),
                 "prompt_tokens": spec.prompt_tokens, "new_tokens": spec.new_tokens,
                 "calibration": {"source": calib_from, "samples": len(calib_texts), "decode_steps": spec.calib_decode_steps}}
    return baseline, builder.results, eval_info


def _calibration(source: str | None, eval_texts: list[str], spec: LMSpec) -> tuple[list[str], str]:
    if not spec.int8_static and spec.smoothquant_alpha is None:
        return [], "none (static int8 and SmoothQuant disabled)"
    if source is None:
        warn("no calibration text given: calibrating static int8 on the eval text")
        texts, source = list(eval_texts), "eval text"
    else:
        texts = load_lm_text(source).texts
    random.Random(0).shuffle(texts)
    return texts[:spec.calib_samples], source


class _Builder:
    """Builds each variant folder, validates it with the same LMEvaluation, keeps the report entries."""

    def __init__(self, stage: Path, ckpt: Checkpoint, evaluation: LMEvaluation, spec: LMSpec, threads: int) -> None:
        self.stage, self.ckpt, self.evaluation, self.spec, self.threads = stage, ckpt, evaluation, spec, threads
        self.results: list[dict[str, Any]] = []
        self.reference: LMOutputs | None = None

    def baseline(self) -> dict[str, Any]:
        info("validating the PyTorch fp32 baseline")
        self.reference = self.evaluation.measure(self.ckpt.model, "pytorch-fp32")
        return self._entry("pytorch-fp32", self.ckpt.source, "pytorch", "fp32", self.reference,
                           self.ckpt.weights_bytes, torch_params(self.ckpt.model))

    def variant(self, name: str, precision: str, build: Callable[[Path], Path], fatal: bool = False,
                settings: dict | None = None) -> Path | None:
        folder = self.stage / "variants" / name
        folder.mkdir(parents=True)
        info(f"building {name}")
        try:
            path = build(folder)
            self._complete_folder(folder)
            outputs = self.evaluation.measure(load_ort_lm(folder, self.threads), name)
            entry = self._entry(name, str(folder), "onnx", precision, outputs, onnx_size(path), onnx_params(path))
        except Exception as err:  # one broken variant must not sink the others
            if fatal:
                raise
            message = str(err) if isinstance(err, CompressError) else f"{type(err).__name__}: {err}"
            warn(f"{name} failed and is left out: {message}")
            shutil.rmtree(folder, ignore_errors=True)
            self.results.append({"name": name, "path": None, "format": "onnx", "precision": precision, "error": message})
            return None
        entry["graph"] = {"ops": {k: v for k, v in graph_op_counts(path).items() if k in QUANT_OPS}}
        entry["settings"] = settings or {}
        self.results.append(entry)
        (folder / "manifest.json").write_text(json.dumps(
            {"variant": name, "made_from": "pytorch checkpoint" if name == "onnx-fp32" else "onnx-fp32",
             "checkpoint": self.ckpt.source, "settings": entry["settings"], "lm": self.spec.model_dump(), "metrics": entry["metrics"],
             "versions": library_versions()},
            indent=2))
        return path

    def smoothquant_variants(self, preset: Int8Preset, head: HeadSpec, calib_texts: list[str], opset: int | None) -> None:
        """int8 dynamic/static from a SmoothQuant-ed copy of the model, exported once to a scratch folder."""
        from compress.quantize.smooth import smooth_

        spec, tokenizer = self.spec, self.ckpt.tokenizer
        batches = [dict(tokenizer(t, truncation=True, max_length=spec.calib_max_length, return_tensors="pt")) for t in calib_texts]
        model = copy.deepcopy(self.ckpt.model)
        record = smooth_(model, batches, spec.smoothquant_alpha)
        with tempfile.TemporaryDirectory(dir=self.stage) as tmp:
            fp32 = export_causal_lm(model, tokenizer, Path(tmp), opset)
            del model
            settings = {"preset": preset.as_dict(), "head": vars(head), "smoothquant": record}
            if spec.int8_dynamic:
                self.variant("onnx-int8-dynamic-smoothquant", "int8",
                             lambda d: quantize_dynamic_lm(fp32, d / MODEL_FILE, preset, head, spec.exclude), settings=settings)
            if spec.int8_static:
                def static(d: Path) -> Path:
                    feeds = calibration_feeds(fp32, tokenizer, calib_texts, spec.calib_max_length, spec.calib_decode_steps, self.threads)
                    return quantize_static_lm(fp32, d / MODEL_FILE, preset, head, feeds, spec.exclude)
                self.variant("onnx-int8-static-smoothquant", "int8", static,
                             settings={**settings, "calibration": "minmax, prefill + decode steps", "calibration_texts": len(calib_texts)})

    def _complete_folder(self, folder: Path) -> None:
        """config, generation config and tokenizer beside model.onnx: ORTModelForCausalLM.from_pretrained(folder) works."""
        self.ckpt.model.config.save_pretrained(folder)
        self.ckpt.model.generation_config.save_pretrained(folder)
        self.ckpt.tokenizer.save_pretrained(folder)

    def _entry(self, name: str, path: str, fmt: str, precision: str, outputs: LMOutputs, size: int, params: int) -> dict[str, Any]:
        metrics = lm_metrics(outputs, self.reference if name != "pytorch-fp32" else None)
        return {"name": name, "path": path, "format": fmt, "precision": precision,
                "provider": "CPUExecutionProvider" if fmt == "onnx" else "torch-cpu",
                "metrics": {k: round(v, 4) for k, v in metrics.items()}, "latency_ms": outputs.decode.as_dict(),
                "latency_ms_batch": outputs.decode_batch.as_dict(), "size_bytes": size, "params": params, "error": None}
