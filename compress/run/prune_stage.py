"""The torch stage of a recipe: prune a copy of the model, then (optionally) distill the float model into it."""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from edge_compress.compress.checkpoint import Checkpoint
from edge_compress.compress.console import console, info
from edge_compress.compress.data import TextData
from edge_compress.compress.errors import CompressError
from edge_compress.compress.recipe import Recipe
from rich.markup import escape
from rich.table import Table


def prune_stage(ckpt: Checkpoint, recipe: Recipe, data: TextData) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Returns the pruned (and distilled) model and a report section: per-layer kept heads/neurons, params, FLOPs."""
    from edge_compress.compress.prune import prune
    from edge_compress.compress.tasks import get_task

    spec, max_length = recipe.prune, recipe.validate_.max_length
    model = copy.deepcopy(ckpt.model)
    batches = get_task(recipe.task).prune_batches(ckpt, data, recipe)
    info(f"pruning on {min(len(batches), spec.num_calib_batches)} calibration batches "
         f"({'with' if data.labels is not None else 'without'} labels) from {data.source}")
    result = prune(model, spec.to_config(), batches)
    section = {**result.to_dict(), "source": data.source, "distilled": False}
    if recipe.distill is not None:
        from edge_compress.compress.distill import distill

        info(f"distilling the float model into the pruned one ({recipe.distill.epochs:g} epochs on {len(data.texts)} texts)")
        encoded = ckpt.tokenizer(data.texts, truncation=True, max_length=max_length)
        rows = [{"input_ids": ids, "attention_mask": mask} for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"])]
        if data.labels is not None:
            for row, label in zip(rows, data.labels):
                row["labels"] = label
        model = distill(model, ckpt.model, rows, recipe.distill.to_config(), ckpt.tokenizer)
        section["distilled"] = True
        section["distill"] = recipe.distill.model_dump()
    info(f"pruned: {result.params_after / 1e6:.2f}M of {result.params_before / 1e6:.2f}M params, "
         f"{result.flops_after / result.flops_before:.0%} of FLOPs; heads per layer {result.heads_per_layer}, "
         f"FFN neurons per layer {result.neurons_per_layer}")
    return model.eval(), section


def prune_checkpoint(model_source: str, out: Path, data_source: str, recipe: Recipe, force: bool = False,
                     text_column: str | None = None, label_column: str | None = None) -> dict[str, Any]:
    """`compress prune`: write the pruned (and distilled) checkpoint folder plus prune_report.json, atomically."""
    from edge_compress.compress.checkpoint import check_max_length, load_checkpoint
    from edge_compress.compress.outputs import check_target, staged
    from edge_compress.compress.prune import check_prunable
    from edge_compress.compress.tasks import get_task

    task = get_task(recipe.task)
    if "prune" not in task.torch_stages:
        raise CompressError(f"pruning is not implemented for {task.name} models", "prune a text-classification or "
                                                                                 "causal-lm checkpoint")
    check_target(out, force, (model_source, data_source))
    ckpt = load_checkpoint(model_source, task)
    recipe.validate_.max_length = check_max_length(ckpt.model.config, recipe.validate_.max_length,
                                                   "max_length" in recipe.validate_.model_fields_set)
    ship = copy.deepcopy(ckpt.tokenizer)  # before any encode changes its padding/truncation (what the folder ships)
    check_prunable(ckpt.model, recipe.prune.to_config())
    data = task.training_texts(data_source, ckpt.model.config, text_column, label_column)
    model, section = prune_stage(ckpt, recipe, data)
    with staged(out, force, (model_source, data_source)) as stage:
        model.save_pretrained(stage)  # safetensors: transformers 5's only format
        ship.save_pretrained(stage)
        (stage / "prune_report.json").write_text(json.dumps(section, indent=2))
        (stage / "recipe.yaml").write_text(recipe.to_yaml())
    console.print(per_layer_table(section))
    console.print(f"pruned checkpoint: [bold]{escape(str(out))}[/] (compress run {escape(str(out))} ... validates and quantizes it)")
    return section


def per_layer_table(section: dict[str, Any]) -> Table:
    table = Table(title=f"kept per layer: {section['params_after'] / 1e6:.2f}M of {section['params_before'] / 1e6:.2f}M params, "
                        f"{section['flops_after'] / section['flops_before']:.0%} of FLOPs")
    for column in ("layer", "heads", "FFN neurons"):
        table.add_column(column, justify="right")
    for layer, (heads, neurons) in enumerate(zip(section["heads_per_layer"], section["neurons_per_layer"])):
        dropped = layer in section["dropped_layers"]
        table.add_row(str(layer), "dropped" if dropped else str(heads), "dropped" if dropped else str(neurons))
    return table
