"""Torch stages before export: each turns the checkpoint's model into another line of variants.

Today: structured pruning, optionally followed by distillation (compress.run.prune_stage), which adds the
`pruned-` line; then vocabulary trimming of the last line's model (compress.run.trim_stage), which adds a
`trimmed-` line (`pruned-trimmed-` after pruning) with its own tokenizer.  QAT is a variant of every line (compress.qat.build registers it), since what it yields is
one int8 graph per model.  Hook for decoder pruning (causal LMs): a task whose checkpoint `check_prunable`
accepts gets the same line; until then recipe.check refuses `prune:` for it.
"""
from __future__ import annotations

from typing import Any

from compress.run.variants import Line

# Tasks whose scores stay comparable when a line has its own (trimmed) tokenizer: per-text predictions.
TRIM_TASKS = ("text-classification",)


def check_stages(ctx: Any) -> None:
    """What can fail on bad input in a stage, before any slow step."""
    refused = [name for name in ("prune", "distill", "qat") if getattr(ctx.recipe, name) is not None
               and name not in ctx.task.torch_stages]
    if refused:
        from compress.errors import CompressError

        raise CompressError(f"the {' and '.join(refused)} stage{'s are' if len(refused) > 1 else ' is'} not implemented for "
                            f"{ctx.task.name} models", f"remove {', '.join(r + ':' for r in refused)} from the recipe")
    if _trims(ctx) and ctx.task.name not in TRIM_TASKS:
        from compress.errors import CompressError

        raise CompressError(f"vocabulary trimming is not implemented for {ctx.task.name} models", "remove trim: from the recipe")
    if ctx.recipe.prune is not None:
        from compress.prune import check_prunable

        check_prunable(ctx.ckpt.model, ctx.recipe.prune.to_config())


def torch_stages(ctx: Any) -> tuple[list[Line], dict[str, Any]]:
    """The lines to build variants from, and the report sections the stages wrote (e.g. "pruning")."""
    lines = [Line("", ctx.ckpt.model)]
    sections: dict[str, Any] = {}
    if ctx.recipe.prune is not None:
        from compress.run.prune_stage import prune_stage

        pruned, pruning = prune_stage(ctx.ckpt, ctx.recipe, ctx.data.train)
        lines.append(Line("pruned-", pruned, settings={"pruning": pruning}))
        sections["pruning"] = pruning
    if _trims(ctx):
        from compress.run.trim_stage import trim_stage

        trimmed, sections["trimming"] = trim_stage(ctx, lines[-1])
        lines.append(trimmed)
    return lines, sections


def _trims(ctx: Any) -> bool:
    """trim: on, or search: on a classifier with no trim: section (the searched line starts from the trimmed model)."""
    recipe = ctx.recipe
    if recipe.trim is not None:
        return recipe.trim.enabled
    return recipe.search is not None and recipe.search.trim and ctx.task.name in TRIM_TASKS
