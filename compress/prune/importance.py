"""Fisher information of head and neuron masks from calibration batches (Michel et al. 2019,
Kwon et al. 2022).

For each batch we take the gradient of the loss with respect to all-ones masks; the squared
gradients summed over batches are the diagonal Fisher importance, and the per-batch gradients
themselves feed mask rearrangement, which needs the off-diagonal terms within a layer.
Causal LMs are scored by their training loss, next-token cross-entropy on the calibration text
itself (plain text needs no labels). Other models use their ``labels`` when the batch has them;
batches without use the model's own predictions as targets, so unlabeled calibration data works
and the score measures how far pruning moves the model from itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from edge_compress.compress.prune.masks import Masks, masked
from edge_compress.compress.prune.specs import ArchSpec
from edge_compress.compress.prune.structure import Structure
from torch import nn

Batch = dict[str, torch.Tensor]


@dataclass
class Gradients:
    """Per-batch mask gradients: per layer, a (num_batches, units) tensor."""

    heads: list[torch.Tensor]
    neurons: list[torch.Tensor]

    def fisher(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Diagonal Fisher importance of every head and neuron."""
        return [g.pow(2).sum(0) for g in self.heads], [g.pow(2).sum(0) for g in self.neurons]


def is_causal_lm(model: nn.Module) -> bool:
    """A text generator (GPT-2/Llama/Gemma-style LM head), not a classifier or encoder-decoder."""
    config = getattr(model, "config", None)
    can_generate = getattr(model, "can_generate", None)
    return bool(can_generate and can_generate()) and not getattr(config, "is_encoder_decoder", False)


def next_token_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """Mean cross-entropy of predicting token t+1 from tokens <= t, over non-padding targets."""
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs).logits[:, :-1]
    targets = batch["input_ids"][:, 1:]
    if "attention_mask" in batch:
        targets = targets.masked_fill(batch["attention_mask"][:, 1:] == 0, -100)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))


def self_supervised_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The batch's loss: next-token loss for causal LMs, else against labels if it has them, else the model's own argmax."""
    if is_causal_lm(model):
        return next_token_loss(model, batch)
    if "labels" in batch:
        return model(**batch).loss
    logits = model(**batch).logits
    targets = logits.detach().argmax(-1)
    if logits.dim() == 3 and "attention_mask" in batch:  # token-level: skip padding
        targets = targets.masked_fill(batch["attention_mask"] == 0, -100)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))


def mask_gradients(
    model: nn.Module, spec: ArchSpec, structure: Structure, batches: Sequence[Batch]
) -> Gradients:
    """Gradients of the loss w.r.t. all-ones masks, one row per batch (weights get no gradients)."""
    masks = Masks.ones(structure, requires_grad=True)
    rows: list[list[torch.Tensor]] = []
    frozen = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in frozen:
        p.requires_grad_(False)
    try:
        with masked(model, spec, masks, structure.unit_width):
            for batch in batches:
                params = masks.heads + masks.neurons
                rows.append([g.detach() for g in torch.autograd.grad(self_supervised_loss(model, batch), params)])
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
    n = structure.num_layers
    stacked = [torch.stack(column) for column in zip(*rows)]
    return Gradients(heads=stacked[:n], neurons=stacked[n:])
