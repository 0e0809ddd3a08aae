"""One seed for every source of randomness: static calibration sampling and the torch stages (QAT, distillation).

`seeded(seed)` seeds Python's, NumPy's and torch's generators through `transformers.set_seed` and switches torch to
its deterministic algorithms where it has them (`warn_only`: an op without one warns instead of failing the run),
restoring the previous setting afterwards so code outside the stage is not affected.  Trainer's data order follows
`TrainingArguments(seed=..., data_seed=...)`, which `compress.distill` sets from the same seed.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

# 0: the seed static int8 calibration sampling always used, so PTQ results match earlier runs (distillation and QAT
# used transformers' TrainingArguments default, 42, before the seed became one recipe field)
DEFAULT_SEED = 0


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    import torch
    from transformers import set_seed

    was_deterministic = torch.are_deterministic_algorithms_enabled()
    was_warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    set_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was_deterministic, warn_only=was_warn_only)
