"""Torch stages before export: each turns the checkpoint's model into another line of variants.

Today: structured pruning, optionally followed by distillation (compress.run.prune_stage), which adds the
`pruned-` line.  QAT is a variant of every line (compress.qat.build registers it), since what it yields is
one int8 graph per model.  Hook for decoder pruning (causal LMs): a task whose checkpoint `check_prunable`
accepts gets the same line; until then recipe.check refuses `prune:` for it.
"""
from __future__ import annotations

from typing import Any

from compress.run.variants import Line


def check_stages(ctx: Any) -> None:
    """What can fail on bad input in a stage, before any slow step."""
    refused = [name for name in ("prune", "distill", "qat") if getattr(ctx.recipe, name) is not None
               and name not in ctx.task.torch_stages]
    if refused:
        from compress.errors import CompressError

        raise CompressError(f"the {' and '.join(refused)} stage{'s are' if len(refused) > 1 else ' is'} not implemented for "
                            f"{ctx.task.name} models", f"remove {', '.join(r + ':' for r in refused)} from the recipe")
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
    return lines, sections
