"""Which process of a distributed launch (torchrun, `accelerate launch --multi_gpu`, mpirun) this one is.

Training stages (distillation, QAT) run in every process, with Trainer's DistributedDataParallel; everything that
writes the output (the lock, the staging folder, the final rename) happens in the main process only, so a launch
with N processes writes one result, not N racing copies.

The rank comes from the launcher's environment, not from `accelerate.PartialState()`: on a machine without a GPU,
`PartialState()` reports every process as the main one unless it is created with `cpu=True` (which also starts
the process group), and these checks run before any training does.
"""
from __future__ import annotations

import os

RANK_VARIABLES = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "MV2_COMM_WORLD_RANK")   # torchrun/accelerate, MPIs
SIZE_VARIABLES = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")


def _first(names: tuple[str, ...], default: int) -> int:
    return next((int(os.environ[name]) for name in names if os.environ.get(name, "").isdigit()), default)


def rank() -> int:
    return _first(RANK_VARIABLES, 0)


def world_size() -> int:
    return max(1, _first(SIZE_VARIABLES, 1))


def is_main_process() -> bool:
    return rank() == 0
