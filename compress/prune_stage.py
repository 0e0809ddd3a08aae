"""The torch stage of a recipe: prune a copy of the model, then (optionally) distill the float model into it."""
from __future__ import annotations

import copy
from typing import Any

import torch

from compress.checkpoint import Checkpoint
from compress.console import info
from compress.data import TextData
from compress.recipe import Recipe


def _batches(data: TextData, tokenizer, batch_size: int, max_length: int) -> list[dict[str, torch.Tensor]]:
    batches = []
    for start in range(0, len(data.texts), batch_size):
        batch = dict(tokenizer(data.texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                               return_tensors="pt"))
        if data.labels is not None:
            batch["labels"] = torch.tensor(data.labels[start:start + batch_size])
        batches.append(batch)
    return batches


def prune_stage(ckpt: Checkpoint, recipe: Recipe, data: TextData) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Returns the pruned (and distilled) model and a report section: per-layer kept heads/neurons, params, FLOPs."""
    from compress.prune import prune

    spec, max_length = recipe.prune, recipe.validate_.max_length
    model = copy.deepcopy(ckpt.model)
    batches = _batches(data, ckpt.tokenizer, spec.batch_size, max_length)
    info(f"pruning on {min(len(batches), spec.num_calib_batches)} calibration batches "
         f"({'with' if data.labels is not None else 'without'} labels) from {data.source}")
    result = prune(model, spec.to_config(), batches)
    section = {**result.to_dict(), "source": data.source, "distilled": False}
    if recipe.distill is not None:
        from compress.distill import distill

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
