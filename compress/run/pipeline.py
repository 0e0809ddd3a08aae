"""`compress run`: checkpoint -> ONNX variants -> validation -> report, in one pass.

Order of work: everything that can fail on bad input (checkpoint, data, recipe,
output folder) is checked before the first slow step.  Variants are built in a
staging folder and validated on the same inputs; one broken variant is
recorded as failed and the run goes on.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from rich.markup import escape

from compress.checkpoint import Checkpoint, check_max_length, load_checkpoint
from compress.console import console, info, warn
from compress.data import TextData, load_text_data, load_training_texts, sibling_train_file
from compress.environment import environment, library_versions
from compress.errors import CompressError
from compress.outputs import check_target, raise_if_disk_full, staged
from compress.run.package import package_selected, wants_package
from compress.run.prune_stage import prune_stage
from compress.quantize.presets import Int8Preset, preset_for
from compress.quantize.ptq import quantize_int8_dynamic, quantize_int8_static
from compress.recipe import Recipe
from compress.report.writer import add_deltas, select, summary_table, write_report
from compress.run.targets import TargetRun, preset_for_targets
from compress.tasks import get_task
from compress.tasks.base import Task
from compress.run.measure import (Evaluation, Measurement, onnx_params, onnx_runner, onnx_size, runtime_graph, torch_params,
                              torch_runner)
from export.hardware import cpu_info
from export.memory import peak_memory
from export.onnx_export import MODEL_FILE, ExportError, export_to_onnx
from export.optimize import optimize_graph, optimizer_supports



@dataclass
class RunOptions:
    model: str
    out: Path
    eval_data: str
    text_column: str | None = None
    label_column: str | None = None
    calib_data: str | None = None
    force: bool = False
    trust_remote_code: bool = False


def run(options: RunOptions, recipe: Recipe) -> dict[str, Any]:
    task = get_task(recipe.task)
    recipe.check()
    check_target(options.out, options.force, (options.model, options.eval_data, options.calib_data))
    threads = recipe.validate_.threads or min(4, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    if task.name == "causal-lm":
        return _run_causal_lm(options, recipe, task, threads)

    info(f"loading checkpoint {options.model}")
    ckpt = load_checkpoint(options.model, task, options.trust_remote_code)
    recipe.validate_.max_length = check_max_length(ckpt.model.config, recipe.validate_.max_length,
                                                   "max_length" in recipe.validate_.model_fields_set)
    if recipe.prune is not None:
        from compress.prune import check_prunable

        check_prunable(ckpt.model, recipe.prune.to_config())
    config = ckpt.model.config
    eval_data = load_text_data(options.eval_data, config.label2id, config.num_labels, options.text_column, options.label_column)
    if recipe.validate_.max_eval_samples:
        eval_data.texts, eval_data.labels = eval_data.texts[:recipe.validate_.max_eval_samples], eval_data.labels[:recipe.validate_.max_eval_samples]
    calib = _calibration_data(options, eval_data, config.label2id, config.num_labels)
    calib_texts = _sample(calib.texts, recipe.quantize.static.num_samples, recipe.seed)
    cpu = cpu_info()
    preset = preset_for_targets(cpu, recipe.quantize.preset, recipe.targets)
    targets = TargetRun(recipe.targets)
    info(f"{len(eval_data.texts)} eval texts from {eval_data.source}; {threads} threads; int8 preset '{preset.name}' ({preset.reason})")

    v = recipe.validate_
    evaluation = Evaluation(eval_data.texts, ckpt.tokenizer, v.max_length, v.batch_size, v.latency_samples, v.warmup)
    with staged(options.out, options.force) as stage:
        builder = _VariantBuilder(stage, task, ckpt, evaluation, eval_data, threads, recipe, targets, train_data=calib)
        baseline = builder.baseline()
        builder.build_all(ckpt.model, "", preset, calib_texts)
        pruning = None
        if recipe.prune is not None:
            pruned, pruning = prune_stage(ckpt, recipe, calib)
            builder.build_all(pruned, "pruned-", preset, calib_texts, extra={"pruning": pruning})
        report = _assemble(task, recipe, baseline, builder.results, cpu, preset, threads,
                           eval={"source": eval_data.source, "samples": len(eval_data.texts),
                                 "text_column": eval_data.text_column, "label_column": eval_data.label_column},
                           calibration={"source": calib.source, "samples": len(calib_texts)}, pruning=pruning,
                           targets=targets.summary(), selection_target=targets.selection_target)
        if wants_package(recipe):
            report["package"] = package_selected(stage, report, recipe, targets, eval_data.texts, ckpt.tokenizer, builder.baseline_outputs)
        _finish(stage, report, recipe)
    return _announce(report, options.out)


def _run_causal_lm(options: RunOptions, recipe: Recipe, task: Task, threads: int) -> dict[str, Any]:
    """The same run for a causal LM: variants and validation come from compress.tasks.causal_lm."""
    from compress.tasks.causal_lm.run import build_and_validate_lm

    cpu = cpu_info()
    preset = preset_for(cpu, recipe.quantize.preset)
    with staged(options.out, options.force) as stage:
        baseline, variants, eval_info = build_and_validate_lm(
            options.model, stage, options.eval_data, options.calib_data or sibling_train_file(options.eval_data), recipe.lm,
            threads, preset, options.text_column, options.trust_remote_code, recipe.export.opset)
        report = _assemble(task, recipe, baseline, variants, cpu, preset, threads, eval=eval_info,
                           calibration=eval_info["calibration"])
        _finish(stage, report, recipe)
    return _announce(report, options.out)


def _assemble(task: Task, recipe: Recipe, baseline: dict, variants: list[dict], cpu, preset: Int8Preset, threads: int,
              selection_target: str = "cpu", **sections: Any) -> dict[str, Any]:
    """Deltas, selection and the report's top level, the same for every task."""
    for entry in variants:
        add_deltas(baseline, entry, task.primary_metric)
    selected, reason = select(baseline, variants, task.primary_metric, task.higher_is_better, recipe.max_accuracy_drop,
                              target=selection_target)
    return {"task": task.name, "metric": task.primary_metric, "higher_is_better": task.higher_is_better,
            "max_accuracy_drop": recipe.max_accuracy_drop, "baseline": baseline, "variants": variants,
            "selected": selected, "selection_reason": reason, **sections, "environment": environment(cpu, preset, threads)}


def _finish(stage: Path, report: dict[str, Any], recipe: Recipe) -> None:
    (stage / "recipe.yaml").write_text(recipe.to_yaml())
    write_report(stage, _relative_paths(report, stage))


def _announce(report: dict[str, Any], out: Path) -> dict[str, Any]:
    console.print(summary_table(report))
    if report["selected"] is None:
        warn(report["selection_reason"])
    console.print(f"report: [bold]{escape(str(out / 'report.md'))}[/] (machine-readable: {escape(str(out / 'report.json'))})")
    return report


def _calibration_data(options: RunOptions, eval_data: TextData, label2id: dict, num_labels: int) -> TextData:
    """--calib-data, else the train file beside the eval file, else the eval texts (with a warning).

    Labels are kept when the file has a label column the model knows (pruning's Fisher scores use them);
    static calibration only needs the texts.
    """
    source = options.calib_data or sibling_train_file(options.eval_data)
    if source is None:
        warn("no --calib-data and no train file beside the eval file: calibrating (and pruning) on the eval texts")
        return eval_data
    return load_training_texts(source, label2id, num_labels, options.text_column, options.label_column)


def _sample(texts: list[str], n: int, seed: int) -> list[str]:
    texts = list(texts)
    random.Random(seed).shuffle(texts)
    return texts[:n]


class _VariantBuilder:
    """Builds each variant folder, validates it, and keeps the result rows."""

    def __init__(self, stage: Path, task: Task, ckpt: Checkpoint, evaluation: Evaluation, data: TextData, threads: int, recipe: Recipe,
                 targets: TargetRun, train_data: TextData | None = None):
        self.stage, self.task, self.ckpt, self.evaluation = stage, task, ckpt, evaluation
        self.data, self.threads, self.recipe, self.targets = data, threads, recipe, targets
        self.train_data = train_data or data
        targets.bind(evaluation, task, data.labels, threads, recipe.validate_.max_length)
        self.results: list[dict[str, Any]] = []
        self.baseline_outputs: np.ndarray | None = None

    def baseline(self) -> dict[str, Any]:
        info("validating the PyTorch fp32 baseline")
        m = self.evaluation.measure(torch_runner(self.ckpt.model), "pytorch-fp32", self.threads)
        self.baseline_outputs = m.outputs
        entry = self._entry("pytorch-fp32", self.ckpt.source, "pytorch", "fp32", m, self.ckpt.weights_bytes, torch_params(self.ckpt.model))
        entry["targets"] = self.targets.measure_baseline(self.ckpt.model, entry)
        return entry

    def build_all(self, model: torch.nn.Module, prefix: str, preset: Int8Preset, calib_texts: list[str], extra: dict | None = None) -> None:
        """One line of variants from `model`: fp32 export -> fused graph -> int8 dynamic / static."""
        extra = extra or {}
        fp32 = self._variant(prefix + "onnx-fp32", "fp32", lambda d: self._export(model, d), parent=None, fatal=True,
                             settings=extra, parity_with=model)
        graph = fp32
        model_type = model.config.model_type
        if self.recipe.optimize.enabled and not optimizer_supports(model_type):
            info(f"ONNX Runtime's transformer optimizer has no fusions for '{model_type}': no onnx-fp32-optimized variant; "
                 "int8 dynamic quantizes the exported graph (ORT's session still applies its generic fusions)")
        elif self.recipe.optimize.enabled:
            graph = self._variant(prefix + "onnx-fp32-optimized", "fp32", lambda d: self._optimize(model, fp32, d), fp32, settings=extra) or fp32
        if self.recipe.quantize.dynamic.enabled:
            self._variant(prefix + "onnx-int8-dynamic", "int8", lambda d: quantize_int8_dynamic(graph, d / MODEL_FILE, preset), graph,
                          settings={"preset": preset.as_dict(), **extra})
        if self.recipe.quantize.static.enabled:
            spec = self.recipe.quantize.static
            feeds = self._calibration_feeds(calib_texts, spec.calibration_method)
            static = {"preset": preset.as_dict(), "calibration_method": spec.calibration_method, "calibration_samples": len(feeds), **extra}
            self._variant(prefix + "onnx-int8-static", "int8",
                          lambda d: quantize_int8_static(fp32, d / MODEL_FILE, preset, feeds, spec.calibration_method, spec.percentile),
                          fp32, settings=static)
            if spec.smoothquant_alpha is not None:
                smoothed = dict(static)
                self._variant(prefix + "onnx-int8-static-smoothquant", "int8",
                              lambda d: self._smoothed_static(model, d, preset, calib_texts, feeds, smoothed), fp32, settings=smoothed)
        if self.recipe.qat is not None:
            settings = {"preset": preset.as_dict(), "qat": self.recipe.qat.model_dump(), **extra}
            self._variant(prefix + "onnx-int8-qat", "int8", lambda d: self._qat(model, d, preset, calib_texts, settings), fp32,
                          settings=settings)
        for name, precision, build, parent, settings in self.targets.extra_variants(fp32, graph, lambda: self._target_calibration(calib_texts)):
            self._variant(prefix + name, precision, build, parent, settings={**settings, **extra})

    def _qat(self, model: torch.nn.Module, folder: Path, preset: Int8Preset, calib_texts: list[str], settings: dict) -> Path:
        """Train a fake-quantized copy, export it with the learned ranges, and check that ONNX Runtime's
        integer graph reproduces the fake-quantized model."""
        from compress.qat.build import qat_to_onnx

        data, limit = self.train_data, self.recipe.validate_.max_length
        feeds = [dict(self.ckpt.tokenizer([t], truncation=True, max_length=limit, return_tensors="np")) for t in calib_texts[:8]]
        path, record = qat_to_onnx(model, self.ckpt.tokenizer, data.texts, data.labels, self.recipe.qat.to_config(preset),
                                   folder / MODEL_FILE, self.task.export_task, preset, feeds, self.evaluation.batches[:4],
                                   self.threads, limit, self.recipe.export.opset)
        settings.update(record)
        return path

    def _smoothed_static(self, model: torch.nn.Module, folder: Path, preset: Int8Preset, calib_texts: list[str],
                         feeds: list[dict[str, np.ndarray]], settings: dict) -> Path:
        """SmoothQuant a copy of the model on the calibration texts, export it, quantize that like the static variant."""
        from compress.quantize.smooth import smooth_

        spec, limit = self.recipe.quantize.static, self.recipe.validate_.max_length
        texts = calib_texts[:spec.num_samples]
        batches = [dict(self.ckpt.tokenizer(texts[i:i + 16], truncation=True, max_length=limit, padding=True, return_tensors="pt"))
                   for i in range(0, len(texts), 16)]
        smoothed = copy.deepcopy(model)
        settings["smoothquant"] = smooth_(smoothed, batches, spec.smoothquant_alpha)
        with tempfile.TemporaryDirectory() as tmp:
            fp32 = self._export(smoothed, Path(tmp))
            self._check_parity(model, fp32)
            return quantize_int8_static(fp32, folder / MODEL_FILE, preset, feeds, spec.calibration_method, spec.percentile)

    def _target_calibration(self, texts: list[str]) -> tuple[list[dict[str, np.ndarray]], str, float]:
        spec = self.recipe.quantize.static
        return self._calibration_feeds(texts, spec.calibration_method), spec.calibration_method, spec.percentile

    def _calibration_feeds(self, texts: list[str], method: str) -> list[dict[str, np.ndarray]]:
        """One text per feed at its own length; histogram methods need one shape, so those are padded/truncated
        to the 90th-percentile length (ORT stacks their activations across feeds)."""
        tokenizer, limit = self.ckpt.tokenizer, self.recipe.validate_.max_length
        if method == "minmax":
            return [dict(tokenizer([t], truncation=True, max_length=limit, return_tensors="np")) for t in texts]
        lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=limit)["input_ids"]]
        length = int(np.percentile(lengths, 90))
        return [dict(tokenizer([t], truncation=True, padding="max_length", max_length=length, return_tensors="np")) for t in texts]

    def _optimize(self, model: torch.nn.Module, fp32: Path, folder: Path) -> Path:
        """ORT fusions; the embedding fusion is kept only if the fused graph still reproduces the model."""
        path = optimize_graph(fp32.parent, folder, self.recipe.optimize.level, fuse_embeddings=True)
        try:
            self._check_parity(model, path)
        except CompressError:
            warn("the fused embedding layer does not reproduce this model (e.g. RoBERTa-style position ids); "
                 "optimizing without that fusion")
            path = optimize_graph(fp32.parent, folder, self.recipe.optimize.level, fuse_embeddings=False)
            self._check_parity(model, path)
        return path

    def _export(self, model: torch.nn.Module, folder: Path) -> Path:
        try:
            return export_to_onnx(model, folder, self.task.export_task, self.recipe.export.opset)
        except ExportError as err:
            raise CompressError(str(err), "check that optimum supports this architecture for this task (optimum-cli export onnx --help), "
                                          "or try another --recipe export.opset") from err

    def _variant(self, name: str, precision: str, build: Callable[[Path], Path], parent: Path | None,
                 fatal: bool = False, settings: dict | None = None, parity_with: torch.nn.Module | None = None) -> Path | None:
        folder = self.stage / "variants" / name
        folder.mkdir(parents=True)
        info(f"building {name}")
        try:
            path = build(folder)
            self._complete_folder(folder, parent)
            if parity_with is not None:
                self._check_parity(parity_with, path)
            m = self._measure(path, name)
            entry = self._entry(name, str(folder), "onnx", precision, m, onnx_size(path), onnx_params(path))
            entry["graph"] = runtime_graph(path)
            entry["targets"] = self.targets.measure(path, name, precision, entry, self.baseline_outputs)
        except CompressError as err:
            if fatal:
                raise
            return self._failed(name, folder, precision, str(err))
        except Exception as err:  # a broken variant must not sink the others
            raise_if_disk_full(err, self.stage)
            if fatal:
                raise
            return self._failed(name, folder, precision, f"{type(err).__name__}: {err}")
        entry["settings"] = settings or {}
        self.results.append(entry)
        _write_manifest(folder, entry, parent, self.recipe)
        return path

    def _failed(self, name: str, folder: Path, precision: str, error: str) -> None:
        warn(f"{name} failed and is left out: {error}")
        shutil.rmtree(folder, ignore_errors=True)
        self.results.append({"name": name, "path": None, "format": "onnx", "precision": precision, "error": error})

    def _complete_folder(self, folder: Path, parent: Path | None) -> None:
        """config.json (the parent's: a pruned line keeps its shapes) and tokenizer next to model.onnx,
        so ORTModelFor<Task>.from_pretrained(folder) works."""
        if not (folder / "config.json").exists():
            shutil.copy(parent.parent / "config.json", folder / "config.json")
        self.ckpt.tokenizer.save_pretrained(folder)

    def _measure(self, path: Path, name: str) -> Measurement:
        with peak_memory() as peak:
            m = self.evaluation.measure(onnx_runner(path, self.threads), name, self.threads)
        m.peak_memory_mb = peak()
        return m

    def _check_parity(self, model: torch.nn.Module, path: Path) -> None:
        """The export must reproduce its PyTorch model on real eval texts (optimum checks random inputs only)."""
        torch_run, onnx_run = torch_runner(model), onnx_runner(path, self.threads)
        diff = max(float(np.max(np.abs(torch_run(f) - onnx_run(f)))) for f in self.evaluation.batches[:4])
        if diff > self.recipe.export.parity_atol:
            raise CompressError(f"the ONNX export disagrees with PyTorch: max |logit difference| {diff:.2e} "
                                f"> {self.recipe.export.parity_atol:g} on the eval texts",
                                "report this model to optimum, or raise export.parity_atol in the recipe if the difference is acceptable")

    def _entry(self, name: str, path: str, fmt: str, precision: str, m: Measurement, size: int, params: int) -> dict[str, Any]:
        metrics = self.task.metrics(m.outputs, self.data.labels, self.baseline_outputs if name != "pytorch-fp32" else None)
        return {"name": name, "path": path, "format": fmt, "precision": precision, "provider": "CPUExecutionProvider" if fmt == "onnx" else "torch-cpu",
                "metrics": {k: round(v, 4) for k, v in metrics.items()}, "latency_ms": m.latency.as_dict(),
                "latency_ms_batch": m.latency_batch.as_dict(), "peak_memory_mb": m.peak_memory_mb, "size_bytes": size, "params": params,
                "error": None}


def _write_manifest(folder: Path, entry: dict, parent: Path | None, recipe: Recipe) -> None:
    manifest = {"variant": entry["name"], "made_from": str(parent.parent.name) if parent else "pytorch checkpoint",
                "input_sha256": _sha256(parent) if parent else None, "settings": entry.get("settings", {}),
                "metrics": entry["metrics"], "versions": library_versions(), "recipe": recipe.model_dump(by_alias=True)}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _relative_paths(report: dict, stage: Path) -> dict:
    """Variant paths point into OUT (where they will live after the rename), relative to it."""
    for entry in report["variants"]:
        if entry.get("path"):
            entry["path"] = str(Path(entry["path"]).relative_to(stage))
    return report
