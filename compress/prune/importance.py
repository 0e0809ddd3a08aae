"""Fisher information of head and neuron masks from calibration batches (Michel et al. 2019,
Kwon et al. 2022).

For each batch we take the gradient of the loss with respect to all-ones masks; the squared
gradients summed over batches are the diagonal Fisher importance, and the per-batch gradients
themselves feed mask rearrangement, which needs the off-diagonal terms within a layer.
Batches without ``labels`` use the model's own predictions as targets, so unlabeled calibration
data works and the score measures how far pruning moves the model from itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from compress.prune.masks import Masks, masked
from compress.prune.specs import ArchSpec
from compress.prune.structure import Structure

Batch = dict[str, torch.Tensor]


@dataclass
class Gradients:
    """Per-batch mask gradients: per layer, a (num_batches, units) tensor."""

    heads: list[torch.Tensor]
    neurons: list[torch.Tensor]

    def fisher(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Diagonal Fisher importance of every head and neuron."""
        return [g.pow(2).sum(0) for g in self.heads], [g.pow(2).sum(0) for g in self.neurons]


def self_supervised_loss(model: nn.Module, batch: Batch) -> torch.Tensor:
    """The batch's loss: against its labels if it has them, else the model's own argmax."""
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
        with masked(model, spec, masks, structure.head_dim):
            for batch in batches:
                params = masks.heads + masks.neurons
                rows.append([g.detach() for g in torch.autograd.grad(self_supervised_loss(model, batch), params)])
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
    n = structure.num_layers
    stacked = [torch.stack(column) for column in zip(*rows)]
    return Gradients(heads=stacked[:n], neurons=stacked[n:])
