"""The variant catalogue: one `Variant` record per kind of model a run can build, registered by the method that makes it.

A record says what the variant is (name, precision), what it is built from (`parent`:
the first of these kinds already built in the same line, or the line's PyTorch model),
how (`build`), which settings it records, for which tasks, on which targets it is
measured (`targets`) and whether only some target makes it worth building (`built_for`).
`plan(ctx)` is the list one run builds; the pipeline builds it line by line (the
checkpoint's line, then e.g. the pruned line, whose names get a `pruned-` prefix).

Records live beside their methods (torchao's config + registered handler; Olive's one
Pass per file): compress/quantize/variants.py (export, fusions, int8/int4 PTQ,
SmoothQuant), compress/qat/build.py (QAT), compress/quantize/tensorrt.py and
compress/run/gpu_variants.py (what only a GPU target needs), compress/search/variants.py (searched mixed precision).
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

# Modules whose import registers records, in catalogue order (a record's `order` sorts within the plan).
CATALOGUE = ("edge_compress.compress.quantize.variants", "edge_compress.compress.search.variants", "edge_compress.compress.qat.build", "edge_compress.compress.quantize.tensorrt",
             "edge_compress.compress.run.gpu_variants", "edge_compress.compress.tasks.translation.variants")


@dataclass
class Line:
    """One PyTorch model and the variants built from it so far."""
    prefix: str                                     # "" for the checkpoint's line, "pruned-" after the prune stage
    model: nn.Module
    settings: dict[str, Any] = field(default_factory=dict)   # recorded in every variant of the line (e.g. pruning)
    built: dict[str, Path] = field(default_factory=dict)     # kind -> model.onnx
    scratch: dict[str, Any] = field(default_factory=dict)    # what variants of the line share (e.g. a SmoothQuant-ed export)
    ctx: Any = None   # the line's own RunContext when its model needs its own tokenizer (the trimmed line); None: the run's

    def close(self) -> None:
        """Remove the line's scratch space (temporary folders the variants shared)."""
        for value in self.scratch.values():
            for item in value if isinstance(value, tuple) else (value,):
                if hasattr(item, "cleanup"):
                    item.cleanup()
        self.scratch.clear()


@dataclass(frozen=True)
class BuildInput:
    ctx: Any              # compress.run.context.RunContext
    line: Line
    folder: Path          # the variant's folder; the model goes to folder / "model.onnx"
    source: Path | None   # the parent's model.onnx; None when built from the line's PyTorch model
    settings: dict[str, Any]


# A build returns the model path, or (path, extra settings learned while building, e.g. QAT's scale movement).
Build = Callable[[BuildInput], "Path | tuple[Path, dict[str, Any]]"]


@dataclass(frozen=True)
class Variant:
    name: str
    precision: str
    build: Build
    tasks: tuple[str, ...]
    order: int
    parent: tuple[str, ...] = ("onnx-fp32",)        # () = the line's PyTorch model
    settings: Callable[[Any], dict[str, Any]] = lambda ctx: {}
    enabled: Callable[[Any], bool] = lambda ctx: True
    targets: tuple[str, ...] = ("cpu",)             # where it is measured (cpu: the entry's top-level results)
    built_for: tuple[str, ...] = ()                 # built only when one of these targets is available
    parity: bool = False                            # check the graph against the line's PyTorch model after building
    fatal: bool = False                             # the run cannot go on without it (the fp32 export)
    last_line_only: bool = False                    # built on the run's last line only (the searched variants: one line)


_REGISTRY: list[Variant] = []


def register(variant: Variant) -> Variant:
    """Add a record to the catalogue (called once per record, at import of its method module)."""
    if any(v.name == variant.name and set(v.tasks) & set(variant.tasks) for v in _REGISTRY):
        raise ValueError(f"variant {variant.name} is registered twice for {variant.tasks}")
    _REGISTRY.append(variant)
    return variant


def catalogue() -> list[Variant]:
    for module in CATALOGUE:
        importlib.import_module(module)
    return sorted(_REGISTRY, key=lambda v: v.order)


def plan(ctx: Any) -> list[Variant]:
    """The records this run builds for each line, in build order (parents before children)."""
    available = ctx.targets.available_names()
    wanted = ctx.recipe.precisions
    return [v for v in catalogue() if ctx.task.name in v.tasks and (not v.built_for or available & set(v.built_for))
            and (wanted is None or v.precision == "fp32" or v.precision in wanted) and v.enabled(ctx)]


def for_line(records: list[Variant], last: bool) -> list[Variant]:
    """The records of `plan` that a line builds: every record on the last line, the others leave out `last_line_only` ones.

    Why: a searched variant costs a sensitivity pass and a dozen measured trials, and the lines before the last one
    (untrimmed, unpruned) are its dominated starting points; one searched line starts from the most compressed model."""
    return [v for v in records if last or not v.last_line_only]


def measured_on(variant: Variant, target: str) -> bool:
    return target in variant.targets
