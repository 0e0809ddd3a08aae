"""RunContext: everything a run's steps read, built once after the checks and before any slow step.

One object handed to the builder, every variant's build function, the measure step
and packaging (as llm-compressor hands one `State` to every modifier), instead of
9-13 parameter signatures and a two-phase `bind()`.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from edge_compress.compress.checkpoint import Checkpoint, check_max_length, load_checkpoint
from edge_compress.compress.console import info
from edge_compress.compress.quantize.presets import Int8Preset
from edge_compress.compress.recipe import Recipe
from edge_compress.compress.run.targets import TargetRun, preset_for_targets
from edge_compress.compress.tasks.base import Task, TaskData, TaskEvaluation
from edge_compress.export.hardware import CpuInfo, cpu_info
from transformers import PreTrainedTokenizerBase


@dataclass
class RunOptions:
    model: str
    out: Path
    eval_data: str
    text_column: str | None = None
    label_column: str | None = None
    calib_data: str | None = None
    force: bool = False
    trust_remote_code: bool = False
    command: str | None = None      # recorded in report.json's `tool` (default: this process's command line)


@dataclass(frozen=True)
class RunContext:
    options: RunOptions
    recipe: Recipe
    task: Task
    ckpt: Checkpoint
    ship_tokenizer: PreTrainedTokenizerBase   # the checkpoint's tokenizer, copied before anything encoded with it
    data: TaskData
    evaluation: TaskEvaluation
    threads: int
    cpu: CpuInfo
    preset: Int8Preset
    targets: TargetRun

    @property
    def tokenizer(self) -> PreTrainedTokenizerBase:
        """The working tokenizer (encodes eval and calibration inputs; never saved)."""
        return self.ckpt.tokenizer


def run_threads(recipe: Recipe) -> int:
    return recipe.validate_.threads or min(4, os.cpu_count() or 1)


def load_context(options: RunOptions, recipe: Recipe, task: Task, targets: TargetRun) -> RunContext:
    """Checkpoint, data and evaluation: the inputs every later step shares."""
    threads = run_threads(recipe)
    torch.set_num_threads(threads)
    info(f"loading checkpoint {options.model}")
    ckpt = load_checkpoint(options.model, task, options.trust_remote_code)
    recipe.validate_.max_length = check_max_length(ckpt.model.config, recipe.validate_.max_length,
                                                   "max_length" in recipe.validate_.model_fields_set)
    # Copied before the first encode: calling a fast tokenizer with padding/truncation arguments changes its backend's
    # settings, and a variant folder must ship the tokenizer the checkpoint came with (issue 11).
    ship = copy.deepcopy(ckpt.tokenizer)
    data = task.load_data(options, ckpt, recipe)
    evaluation = task.evaluation(ckpt, data, recipe)
    cpu = cpu_info()
    preset = preset_for_targets(cpu, recipe.quantize.preset, recipe.targets)
    info(f"{len(data.eval_texts)} eval texts from {data.sections['eval']['source']}; {threads} threads; "
         f"int8 preset '{preset.name}' ({preset.reason})")
    return RunContext(options, recipe, task, ckpt, ship, data, evaluation, threads, cpu, preset, targets)

