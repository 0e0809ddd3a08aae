"""The run's deployment targets: which are available and which are measured per variant.

The target table itself (providers, options, availability probes) is `export/targets.py`;
which variant is measured on which target is said by each variant's record
(`compress.run.variants.Variant.targets`).  A target this machine lacks, or one a task's
variants cannot run on, is reported with the fix and left out.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from edge_compress.compress.console import warn
from edge_compress.compress.errors import CompressError
from edge_compress.compress.quantize.presets import PRESETS, Int8Preset, preset_for
from edge_compress.export.hardware import CpuInfo
from edge_compress.export.targets import TARGETS, Target, unavailable_reason


def parse_targets(text: str) -> list[str]:
    """`--target cpu,cuda` -> ["cpu", "cuda"] (order kept: the first available one decides the selection)."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    unknown = [t for t in names if t not in TARGETS]
    if unknown or not names:
        raise CompressError(f"unknown target {', '.join(unknown) or repr(text)}",
                            f"use a comma-separated list of {', '.join(TARGETS)}, e.g. --target cpu,cuda")
    return list(dict.fromkeys(names))


def parse_fixed_shape(text: str) -> tuple[int, int]:
    """`--fixed-shape 1,128` -> (batch 1, sequence 128)."""
    parts = text.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise CompressError(f"--fixed-shape {text!r} is not BATCH,SEQUENCE", "give two positive integers, e.g. --fixed-shape 1,128")
    return int(parts[0]), int(parts[1])


def preset_for_targets(cpu: CpuInfo, name: str, targets: list[str]) -> Int8Preset:
    """The int8 preset follows where the model ships: a mobile package runs on ARM whatever this host is."""
    if name == "auto" and "mobile" in targets:
        arm = PRESETS["arm64"]
        return dataclasses.replace(arm, reason=f"target mobile (ARM device): {arm.reason}")
    return preset_for(cpu, name)


class TargetRun:
    """Requested targets, resolved against this machine and against what the task's variants can run on."""

    def __init__(self, requested: list[str], supported: frozenset[str] = frozenset(TARGETS), task: str = "") -> None:
        self.requested = requested
        self.unavailable: dict[str, str] = {}
        self.available: list[Target] = []
        for name in requested:
            if name not in supported:
                reason = (f"{task} variants are not measured on {name} (targets for {task}: {', '.join(sorted(supported))}). "
                          f"Fix: request {', '.join(sorted(supported))}")
            else:
                why = unavailable_reason(TARGETS[name])
                reason = None if why is None else f"{why}. Fix: {TARGETS[name].install}"
            if reason is None:
                self.available.append(TARGETS[name])
            else:
                self.unavailable[name] = reason
                warn(f"target {name} is not available and is skipped: {reason}")

    @property
    def measured(self) -> list[Target]:
        """Targets measured per variant: CPU always (the top-level results), then the requested ones in order."""
        return [TARGETS["cpu"], *(t for t in self.available if t.name != "cpu" and not t.packaged)]

    @property
    def selection_target(self) -> str:
        """The first requested target measured per variant; CPU when none of them is."""
        measured = {t.name for t in self.measured}
        return next((name for name in self.requested if name in measured), "cpu")

    def available_names(self) -> set[str]:
        return {t.name for t in self.available}

    def summary(self) -> dict[str, Any]:
        return {"requested": self.requested, "measured": [t.name for t in self.measured],
                "unavailable": self.unavailable, "selection": self.selection_target,
                "providers": {t.name: list(t.providers) for t in self.measured}}
