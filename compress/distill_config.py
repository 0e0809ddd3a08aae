"""`DistillConfig`: loss weights and schedule of `compress.distill` (and its error type).

Kept apart from the Trainer code (torch, transformers) so the recipe -- which embeds this class as its
`distill:` section -- and `compress --help` read it without importing them.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from edge_compress.compress.errors import CompressError
from edge_compress.compress.seeding import DEFAULT_SEED


class DistillError(CompressError, ValueError):
    """Bad distillation input, with how to fix it."""


@dataclass(frozen=True)
class DistillConfig:
    """Loss weights and training schedule.

    ``layer_map[j]`` is the teacher hidden state (0 = embeddings) matched to student hidden state j;
    by default identity when depths agree, else evenly spread. For a model pruned with dropped layers,
    pass ``[0] + [i + 1 for i in kept_layers]``. ``max_steps > 0`` overrides ``epochs``.
    ``training_args`` passes anything else to `TrainingArguments` (bf16, gradient accumulation, ...).
    """

    temperature: float = 2.0
    kl_weight: float = 1.0
    hidden_weight: float = 0.0
    label_weight: float = 0.0
    layer_map: tuple[int, ...] | None = None
    epochs: float = 3.0
    max_steps: int = -1
    learning_rate: float = 5e-5
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 16
    seed: int = DEFAULT_SEED
    output_dir: str | None = None
    training_args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise DistillError(f"temperature={self.temperature} must be positive (typical: 1-4).")
        weights = (self.kl_weight, self.hidden_weight, self.label_weight)
        if min(weights) < 0 or sum(weights) == 0:
            raise DistillError("kl_weight, hidden_weight, label_weight must be >= 0 and not all 0.")
        if self.batch_size < 1 or self.learning_rate <= 0:
            raise DistillError("batch_size must be >= 1 and learning_rate > 0.")
        if not 0 <= self.warmup_ratio < 1:
            raise DistillError(f"warmup_ratio={self.warmup_ratio} must be in [0, 1): the share of steps spent warming up.")
        if self.max_steps <= 0 and self.epochs <= 0:
            raise DistillError("Set epochs > 0 or max_steps > 0.")
