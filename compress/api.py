"""The Python API: `compress run` as a function, and report.json as typed objects.

    import edge_compress
    report = edge_compress.run("my-checkpoint", "eval.csv", out="runs/first")
    print(report.selected.name, report.selected.delta.speedup)

`run` goes through exactly what the command does (the same recipe validation, output-folder rules and lifecycle);
only the printing differs (set `quiet=True` to keep it to warnings). `load_report` reads any report.json, so a CI
script and a notebook see the same typed view. The view is pydantic and ignores fields it does not know, so a
report written by a newer edge-compress of the same schema_version still loads.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge_compress.compress.errors import CompressError
from edge_compress.compress.recipe import Recipe, load_recipe, validate_recipe
from pydantic import BaseModel, ConfigDict

__all__ = ["Delta", "Latency", "Report", "Variant", "load_report", "run"]


class _View(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Latency(_View):
    """Batch-1 latency in milliseconds: p50 over every timed call, and the spread of the per-round p50s."""
    p50: float
    p90: float
    mean: float
    rounds: int
    round_p50: list[float] = []
    spread: tuple[float, float]


class Delta(_View):
    """Against the PyTorch fp32 baseline."""
    metric: float          # change of the primary metric (points; perplexity for causal LMs)
    latency_ratio: float   # variant / baseline latency at batch 1 (below 1: faster)
    speedup: float         # baseline / variant latency at batch 1
    size_ratio: float      # variant / baseline bytes
    compression: float     # baseline / variant bytes


class Variant(_View):
    """One report.json entry: the baseline, or one built (or failed) variant."""
    name: str
    path: str | None
    format: str
    precision: str
    metrics: dict[str, float] = {}
    latency_ms: Latency | None = None
    size_bytes: int | None = None
    params: int | None = None
    delta: Delta | None = None
    settings: dict[str, Any] = {}
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Report(_View):
    """report.json, typed. `folder` is where it was read from; variant paths are relative to it."""
    schema_version: int
    task: str
    metric: str
    higher_is_better: bool
    max_accuracy_drop: float
    baseline: Variant
    variants: list[Variant]
    selection_reason: str
    tied: list[str] = []
    selected_name: str | None = None
    folder: Path | None = None
    raw: dict[str, Any] = {}

    @property
    def selected(self) -> Variant | None:
        """The variant to ship, or None when none met the budget (the CLI's exit status 3)."""
        return self.variant(self.selected_name) if self.selected_name else None

    def variant(self, name: str) -> Variant:
        for entry in self.variants:
            if entry.name == name:
                return entry
        raise KeyError(f"no variant {name!r} in this report (variants: {', '.join(v.name for v in self.variants)})")

    def path_of(self, name: str) -> Path:
        """The folder of variant `name`, ready for onnxruntime or ExportedModel.from_pretrained."""
        entry = self.variant(name)
        if entry.path is None or self.folder is None:
            raise KeyError(f"variant {name!r} has no folder (it failed: {entry.error})")
        return self.folder / entry.path


def load_report(path: str | Path) -> Report:
    """A report.json (or the OUT folder holding one) as a typed Report."""
    file = Path(path)
    file = file / "report.json" if file.is_dir() else file
    if not file.exists():
        raise CompressError(f"no report at {file}", "pass a `compress run` OUT folder or its report.json")
    data = json.loads(file.read_text(encoding="utf-8"))
    return Report.model_validate({**data, "selected_name": data.get("selected"), "folder": file.parent, "raw": data})


def run(model: str | Path | None = None, eval_data: str | Path | None = None, *, out: str | Path,
        recipe: Recipe | Mapping[str, Any] | str | Path | None = None, calib_data: str | Path | None = None,
        text_column: str | None = None, label_column: str | None = None, force: bool = False,
        trust_remote_code: bool = False, quiet: bool = False) -> Report:
    """Compress `model` (a checkpoint folder or hub id), validate every variant on `eval_data`, write OUT, return the report.

    `recipe` is a Recipe, a dict in the recipe file's shape, or a YAML path; a recipe written by an earlier run
    (OUT/recipe.yaml) names its model and data, so `run(out=..., recipe="old/recipe.yaml")` repeats that run.
    Bad input raises CompressError (its `.hint` says what to do) before any slow step."""
    from edge_compress.compress.console import set_verbosity
    from edge_compress.compress.outputs import output_lock
    from edge_compress.compress.run.pipeline import RunOptions, options_from_recipe
    from edge_compress.compress.run.pipeline import run as run_pipeline

    spec = _recipe(recipe)
    out = Path(out)
    if model is None and eval_data is None:
        options = options_from_recipe(spec, out, force)
    elif model is None or eval_data is None:
        raise CompressError("pass both model and eval_data, or neither (the recipe then names them)",
                            "give model= and eval_data=, or a recipe with model: and data: {eval: ...}")
    else:
        options = RunOptions(str(model), out, str(eval_data), text_column, label_column,
                             str(calib_data) if calib_data is not None else None, force, trust_remote_code,
                             command=f"edge_compress.run({str(model)!r}, {str(eval_data)!r}, out={str(out)!r})")
    if quiet:
        set_verbosity("warning")
    with output_lock(out, options.command or "edge_compress.run"):
        run_pipeline(options, spec)
    return load_report(out)


def _recipe(recipe: Recipe | Mapping[str, Any] | str | Path | None) -> Recipe:
    if isinstance(recipe, Recipe):
        return recipe
    if isinstance(recipe, Mapping):
        return validate_recipe(dict(recipe), "the recipe passed to run()")
    return load_recipe(str(recipe) if recipe is not None else None)
