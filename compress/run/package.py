"""OUT/package/: the selected variant as a phone or edge board would ship it, checked before it is reported.

Made after selection, inside the staging folder (so OUT is still complete or
absent): the ORT-format model and the reduced-operator config a minimal
ONNX Runtime build is compiled from, and/or (classifiers) a fixed-shape model for
NPUs and delegates, plus the tokenizer and config the app needs.  Each artefact is
loaded and scored on the eval data here, on the host CPU, by the task's
`package_check`: that proves the files work, not how fast the device is.
A task adds what its device runtime needs through `Task.package_files` (a causal LM:
onnxruntime-genai's genai_config.json), listed as `runtime_files`, and checks them with that
runtime through `Task.check_package_files` (genai generates the same greedy tokens as ONNX Runtime).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
from edge_compress.compress.console import info, warn
from edge_compress.compress.recipe import Recipe
from edge_compress.compress.report.schema import Entry, TargetResult
from edge_compress.compress.run.measure import Subject, measure, onnx_runner
from edge_compress.compress.tasks.base import Scored
from edge_compress.export.hf_manifest import MANIFEST_FILE
from edge_compress.export.memory import peak_memory
from edge_compress.export.mobile import convert_to_ort, fix_shapes
from edge_compress.export.onnx_export import MODEL_FILE

FIXED_FILE = "model.fixed.onnx"


def wants_package(recipe: Recipe) -> bool:
    return recipe.package.ort_format or recipe.package.fixed_shape is not None or "mobile" in recipe.targets


def package_selected(stage: Path, ctx: Any, entry: Entry | None,
                     baseline: Scored) -> tuple[dict[str, Any] | None, TargetResult | None]:
    """Build and check OUT/package/ from the selected variant: (report.json's `package` section, the `mobile` result)."""
    if entry is None:
        warn("no variant was selected, so nothing is packaged for the device")
        return None, None
    recipe = ctx.recipe
    variant, out = Path(entry.path), stage / "package"
    out.mkdir()
    info(f"packaging {entry.name} for the device in package/")
    # Every graph of the variant (model.onnx; a seq2seq folder's encoder.onnx and decoder.onnx) becomes an .ort file.
    graphs = ctx.task.graph_paths(variant / MODEL_FILE)
    # tokenizer and config: what the app needs besides the model (export.json describes the .onnx graphs the .ort replace)
    for file in variant.iterdir():
        if file.is_file() and not any(file.name.startswith(g.name) for g in graphs) and file.name not in ("manifest.json", MANIFEST_FILE):
            shutil.copy(file, out / file.name)
    section: dict[str, Any] = {"variant": entry.name, "int8_preset": entry.settings.get("preset"),
                               "ort_model": None, "ops_config": None, "fixed_shape_model": None, "fixed_shape": None,
                               "checks": {}}
    onnx_models = list(graphs)
    fixed = recipe.package.fixed_shape
    if fixed is not None:
        fixed_path = fix_shapes(variant / MODEL_FILE, out / FIXED_FILE, fixed.batch, fixed.sequence)
        section.update(fixed_shape_model=f"package/{FIXED_FILE}", fixed_shape=fixed.model_dump())
        section["checks"]["fixed_shape_model"] = _check_fixed(ctx, fixed_path, fixed.batch, fixed.sequence, baseline)
        onnx_models.append(fixed_path)
    mobile = None
    if recipe.package.ort_format or "mobile" in recipe.targets:
        ort_models, config = convert_to_ort(onnx_models, out)
        section.update(ort_model=f"package/{ort_models[0].name}", ops_config=f"package/{config.name}",
                       ort_models=[f"package/{m.name}" for m in ort_models])
        mobile = _check_ort(ctx, ort_models[0], baseline)
        section["checks"]["ort_model"] = mobile.to_dict()
        if "mobile" not in ctx.targets.requested:
            mobile = None
    section["runtime_files"] = ctx.task.package_files(ctx, variant, out)
    section["runtime_checks"] = ctx.task.check_package_files(ctx, out, section["runtime_files"])
    # The ops config is an input to the runtime's build, not something the device ships.
    section["sizes"] = {f.name: f.stat().st_size for f in sorted(out.iterdir()) if f.suffix != ".config"}
    section["ops_config_bytes"] = (stage / section["ops_config"]).stat().st_size if section["ops_config"] else None
    return section, mobile


def _check_ort(ctx: Any, path: Path, baseline: Scored) -> TargetResult:
    with peak_memory() as peak:
        check = ctx.task.package_check(ctx, path, baseline)
    note = "ORT-format package on this host's CPU EP; device latency differs"
    if check["open"] is None:
        return TargetResult("CPUExecutionProvider", check["metrics"], peak_memory_mb=peak(),
                            note=note + "; not timed here (a device generates through its LLM runtime)")
    timing = measure(ctx.evaluation, [Subject(f"package/{path.name}", "cpu", check["open"])], ctx.recipe.validate_.rounds)
    result = next(iter(timing.values()))
    if isinstance(result, str):
        return TargetResult("CPUExecutionProvider", check["metrics"], peak_memory_mb=peak(),
                            note=f"{note}; timing failed: {result}")
    return TargetResult("CPUExecutionProvider", check["metrics"], result.single, result.batch, peak(), note=note)


def _check_fixed(ctx: Any, path: Path, batch: int, sequence: int, baseline: Scored) -> dict[str, Any]:
    """Scores on every eval text padded/truncated to `sequence`, `batch` at a time (the last chunk padded with repeats)."""
    run, texts, tokenizer = onnx_runner(path, ctx.threads), ctx.data.eval_texts, ctx.tokenizer
    outputs = []
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        feed = dict(tokenizer(chunk + chunk[-1:] * (batch - len(chunk)), padding="max_length", truncation=True,
                              max_length=sequence, return_tensors="np"))
        outputs.append(run(feed)[:len(chunk)])
    metrics = ctx.task.metrics(np.concatenate(outputs).astype(np.float32), ctx.data.references, baseline.outputs)
    return {"metrics": {k: round(v, 4) for k, v in metrics.items()}, "batch": batch, "sequence": sequence,
            "truncated_texts": int(sum(len(ids) > sequence for ids in tokenizer(texts, truncation=False)["input_ids"]))}
