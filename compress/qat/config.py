"""`QATConfig`: the settings of quantization-aware training (`compress.qat.train`).

Kept apart from the training code (torch) so the recipe -- which embeds this class as its `qat:` section -- and
`compress --help` read it without importing torch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from edge_compress.compress.seeding import DEFAULT_SEED
from pydantic import Field

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


@dataclass(frozen=True)
class QATConfig:
    """Quantization grid, calibration start, and the distillation schedule.

    The recipe's `qat:` section embeds this class, so these defaults are the only ones (the `Annotated` bounds are
    checked when a recipe or a CLI flag sets a field).  ``activation_type``/``reduce_range`` None: the run's int8
    preset decides (uint8 / full range when the class is used directly).  ``seed`` seeds calibration, dropout and
    data order (`compress.seeding`); a run sets it from the recipe's top-level ``seed``.
    """
    activation_type: Literal["uint8", "int8"] | None = None
    reduce_range: bool | None = None
    percentile: Annotated[float, Field(gt=90, le=100, description="initial activation range: this percentile of calibration values")] = 99.99
    calib_batches: Annotated[int, Field(ge=1, description="batches that set the initial activation ranges")] = 16
    epochs: Annotated[float, Field(ge=0, allow_inf_nan=False, description="training epochs (max_steps > 0 overrides)")] = 2.0
    max_steps: Annotated[int, Field(description="stop after this many steps; -1: train for `epochs`")] = -1
    learning_rate: Positive = 2e-5
    batch_size: Annotated[int, Field(ge=1)] = 16
    temperature: Positive = 2.0
    label_weight: Annotated[float, Field(ge=0, allow_inf_nan=False,
                                         description="weight of the labels' cross-entropy beside the distillation loss")] = 0.0
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError(f"epochs={self.epochs:g} trains nothing: set epochs > 0 (e.g. 2), or max_steps > 0")
