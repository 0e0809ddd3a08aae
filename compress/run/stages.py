"""Torch stages before export: each turns the checkpoint's model into another line of variants.

Today: structured pruning, optionally followed by distillation (compress.run.prune_stage), which adds the
`pruned-` line; then vocabulary trimming of the last line's model (compress.run.trim_stage), which adds a
`trimmed-` line (`pruned-trimmed-` after pruning) with its own tokenizer.  QAT is a variant of every line (compress.qat.build registers it), since what it yields is
one int8 graph per model.  Causal LMs get the same `pruned-` line (KV groups and FFN neurons, compress.prune.specs).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge_compress.compress.run.variants import Line

# Tasks whose scores stay comparable when a line has its own (trimmed) tokenizer: per-text predictions.
TRIM_TASKS = ("text-classification",)


def check_stages(ctx: Any) -> None:
    """What can fail on bad input in a stage, before any slow step."""
    refused = [name for name in ("prune", "distill", "qat") if getattr(ctx.recipe, name) is not None
               and name not in ctx.task.torch_stages]
    if refused:
        from edge_compress.compress.errors import CompressError

        raise CompressError(f"the {' and '.join(refused)} stage{'s are' if len(refused) > 1 else ' is'} not implemented for "
                            f"{ctx.task.name} models", f"remove {', '.join(r + ':' for r in refused)} from the recipe")
    if _trims(ctx) and ctx.task.name not in TRIM_TASKS:
        from edge_compress.compress.errors import CompressError

        raise CompressError(f"vocabulary trimming is not implemented for {ctx.task.name} models", "remove trim: from the recipe")
    if ctx.recipe.prune is not None:
        from edge_compress.compress.prune import check_prunable

        check_prunable(ctx.ckpt.model, ctx.recipe.prune.to_config())


def torch_stages(ctx: Any, store: Any = None) -> tuple[list[Line], dict[str, Any]]:
    """The lines to build variants from, and the report sections the stages wrote (e.g. "pruning").
    `store` (compress.run.resume.ResumeStore) keeps the pruned (and distilled) checkpoint for a rerun after a kill."""
    lines = [Line("", ctx.ckpt.model)]
    sections: dict[str, Any] = {}
    if ctx.recipe.prune is not None:
        from edge_compress.compress.run.prune_stage import prune_stage

        def build() -> tuple[Any, dict[str, Any]]:
            return prune_stage(ctx.ckpt, ctx.recipe, ctx.data.train)

        pruned, pruning = build() if store is None else store.checkpoint("pruned", None, build, _save_pruned, _load_pruned)
        lines.append(Line("pruned-", pruned, settings={"pruning": pruning}))
        sections["pruning"] = pruning
    if _trims(ctx):
        from edge_compress.compress.run.trim_stage import trim_stage

        trimmed, sections["trimming"] = trim_stage(ctx, lines[-1])
        lines.append(trimmed)
    return lines, sections


def _trims(ctx: Any) -> bool:
    """trim: on, or search: on a classifier with no trim: section (the searched line starts from the trimmed model)."""
    recipe = ctx.recipe
    if recipe.trim is not None:
        return recipe.trim.enabled
    return recipe.search is not None and recipe.search.trim and ctx.task.name in TRIM_TASKS


def _save_pruned(result: tuple[Any, dict[str, Any]], folder: Path) -> None:
    model, section = result
    model.save_pretrained(folder)  # safetensors: the weights come back bit for bit
    (folder / "pruning.json").write_text(json.dumps(section))


def _load_pruned(folder: Path) -> tuple[Any, dict[str, Any]]:
    from edge_compress.compress.prune import load_pruned

    return load_pruned(folder).eval(), json.loads((folder / "pruning.json").read_text())
