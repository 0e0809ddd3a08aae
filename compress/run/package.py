"""OUT/package/: the selected variant as a phone or edge board would ship it, checked before it is reported.

Made after selection, inside the staging folder (so OUT is still complete or
absent): the ORT-format model and the reduced-operator config a minimal
ONNX Runtime build is compiled from, and/or a fixed-shape model for NPUs and
delegates, plus the tokenizer and config the app needs.  Each artefact is
loaded and scored on the eval texts here, on the host CPU: that proves the
files work, not how fast the device is.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from compress.console import info, warn
from compress.recipe import Recipe
from compress.run.targets import TargetRun
from compress.run.measure import onnx_runner
from export.memory import peak_memory
from export.mobile import convert_to_ort, fix_shapes
from export.onnx_export import MODEL_FILE

FIXED_FILE = "model.fixed.onnx"


def wants_package(recipe: Recipe) -> bool:
    return recipe.package.ort_format or recipe.package.fixed_shape is not None or "mobile" in recipe.targets


def package_selected(stage: Path, report: dict[str, Any], recipe: Recipe, targets: TargetRun, texts: list[str], tokenizer,
                     baseline_outputs: np.ndarray | None) -> dict[str, Any] | None:
    """Build and check OUT/package/ from the selected variant; returns report.json's `package` section."""
    if report["selected"] is None:
        warn("no variant was selected, so nothing is packaged for the device")
        return None
    entry = next(v for v in report["variants"] if v["name"] == report["selected"])
    variant, out = Path(entry["path"]), stage / "package"
    out.mkdir()
    info(f"packaging {entry['name']} for the device in package/")
    for file in variant.iterdir():  # tokenizer and config: what the app needs besides the model
        if file.is_file() and not file.name.startswith(MODEL_FILE) and file.name != "manifest.json":
            shutil.copy(file, out / file.name)
    section: dict[str, Any] = {"variant": entry["name"], "int8_preset": entry.get("settings", {}).get("preset"),
                               "ort_model": None, "ops_config": None, "fixed_shape_model": None, "fixed_shape": None, "checks": {}}
    onnx_models = [variant / MODEL_FILE]
    fixed = recipe.package.fixed_shape
    if fixed is not None:
        fixed_path = fix_shapes(variant / MODEL_FILE, out / FIXED_FILE, fixed.batch, fixed.sequence)
        section.update(fixed_shape_model=f"package/{FIXED_FILE}", fixed_shape=fixed.model_dump())
        section["checks"]["fixed_shape_model"] = _check_fixed(fixed_path, fixed.batch, fixed.sequence, texts, tokenizer, targets,
                                                              baseline_outputs)
        onnx_models.append(fixed_path)
    if recipe.package.ort_format or "mobile" in recipe.targets:
        ort_models, config = convert_to_ort(onnx_models, out)
        section.update(ort_model=f"package/{ort_models[0].name}", ops_config=f"package/{config.name}")
        section["checks"]["ort_model"] = check = _check_ort(ort_models[0], targets, baseline_outputs)
        if "mobile" in targets.requested:
            entry.setdefault("targets", {})["mobile"] = {**check, "note": "ORT-format package on this host's CPU EP; "
                                                                          "device latency differs"}
    # The ops config is an input to the runtime's build, not something the device ships.
    section["sizes"] = {f.name: f.stat().st_size for f in sorted(out.iterdir()) if f.suffix != ".config"}
    section["ops_config_bytes"] = (stage / section["ops_config"]).stat().st_size if section["ops_config"] else None
    return section


def _check_ort(path: Path, targets: TargetRun, baseline_outputs: np.ndarray | None) -> dict[str, Any]:
    with peak_memory() as peak:
        m = targets.evaluation.measure(onnx_runner(path, targets.threads), f"package/{path.name}", targets.threads)
    return targets.result("CPUExecutionProvider", m, peak(), baseline_outputs)


def _check_fixed(path: Path, batch: int, sequence: int, texts: list[str], tokenizer, targets: TargetRun,
                 baseline_outputs: np.ndarray | None) -> dict[str, Any]:
    """Scores on every eval text padded/truncated to `sequence`, `batch` at a time (the last chunk padded with repeats)."""
    run = onnx_runner(path, targets.threads)
    outputs = []
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        feed = dict(tokenizer(chunk + chunk[-1:] * (batch - len(chunk)), padding="max_length", truncation=True,
                              max_length=sequence, return_tensors="np"))
        outputs.append(run(feed)[:len(chunk)])
    metrics = targets.task.metrics(np.concatenate(outputs).astype(np.float32), targets.labels, baseline_outputs)
    return {"metrics": {k: round(v, 4) for k, v in metrics.items()}, "batch": batch, "sequence": sequence,
            "truncated_texts": int(sum(len(ids) > sequence for ids in tokenizer(texts, truncation=False)["input_ids"]))}
