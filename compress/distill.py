"""Recovery by distillation: the float model teaches its pruned copy.

    student = distill(student, teacher, train_dataset, DistillConfig(epochs=3), tokenizer)

Loss = ``kl_weight · T² · KL(teacher ‖ student)`` on temperature-softened logits
+ ``hidden_weight · MSE`` between matching hidden states (``layer_map``)
+ ``label_weight · CE`` on the dataset's labels when present. Token-level logits (LMs) and hidden
states are averaged over non-padding tokens. Training is a `transformers.Trainer` subclass, so the
same stage runs under ``torchrun``/``accelerate launch --multi_gpu`` unchanged (DDP; gloo on a CPU-only
machine); ``batch_size`` is the global batch, split across the processes; progress is Trainer's tqdm;
nothing is written to disk unless ``output_dir`` is set.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from edge_compress.compress.distill_config import DistillConfig, DistillError
from edge_compress.compress.ranks import world_size
from edge_compress.compress.seeding import seeded
from torch import nn
from torch.utils.data import Dataset
from transformers import (
    DataCollatorWithPadding,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    Trainer,
    TrainingArguments,
)
from transformers.modeling_outputs import ModelOutput

FEATURES = ("input_ids", "attention_mask", "token_type_ids", "labels")


def _token_mean(values: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Mean of per-position `values` (batch, seq) over real tokens."""
    if attention_mask is None:
        return values.mean()
    mask = attention_mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp_min(1)


def default_layer_map(student_states: int, teacher_states: int) -> list[int]:
    """Student hidden state j ↔ teacher state at the same relative depth."""
    if student_states == 1:
        return [0]
    return [round(j * (teacher_states - 1) / (student_states - 1)) for j in range(student_states)]


def distill_loss(
    student: ModelOutput,
    teacher: ModelOutput,
    config: DistillConfig,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """The distillation loss without the label term (see the module docstring)."""
    t = config.temperature
    log_p_student = F.log_softmax(student.logits.float() / t, dim=-1)
    log_p_teacher = F.log_softmax(teacher.logits.float() / t, dim=-1)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1)  # per example or token
    loss = config.kl_weight * t * t * (_token_mean(kl, attention_mask) if kl.dim() == 2 else kl.mean())
    if config.hidden_weight > 0:
        s_states, t_states = student.hidden_states, teacher.hidden_states
        layer_map = config.layer_map or default_layer_map(len(s_states), len(t_states))
        if len(layer_map) != len(s_states) or max(layer_map) >= len(t_states):
            raise DistillError(
                f"layer_map {list(layer_map)} must give one teacher state (0..{len(t_states) - 1}) for "
                f"each of the student's {len(s_states)} hidden states."
            )
        mse = sum(
            _token_mean((s_states[j].float() - t_states[i].float()).pow(2).mean(-1), attention_mask)
            for j, i in enumerate(layer_map)
        )
        loss = loss + config.hidden_weight * mse / len(layer_map)
    return loss


class DistillTrainer(Trainer):
    """A `Trainer` whose loss is `distill_loss` against a frozen teacher."""

    def __init__(self, *args: Any, teacher: nn.Module, distill_config: DistillConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.teacher = teacher.to(self.args.device).eval().requires_grad_(False)
        self.distill_config = distill_config

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        cfg = self.distill_config
        labels = inputs.pop("labels", None)
        hidden = cfg.hidden_weight > 0
        with torch.no_grad():
            teacher_out = self.teacher(**inputs, output_hidden_states=hidden)
        use_labels = cfg.label_weight > 0 and labels is not None
        student_out = model(**inputs, output_hidden_states=hidden, **({"labels": labels} if use_labels else {}))
        loss = distill_loss(student_out, teacher_out, cfg, inputs.get("attention_mask"))
        if use_labels:
            loss = loss + cfg.label_weight * student_out.loss
        return (loss, student_out) if return_outputs else loss


class _Features(Dataset):
    """Keeps only tokenized model features, so extra columns (text, ids) don't reach the collator."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {k: v for k, v in self.rows[index].items() if k in FEATURES}


def per_device_batch(batch_size: int) -> int:
    """`batch_size` is the global batch: under a launch of N processes each takes 1/N of it (rounded up), so the
    same recipe takes the same optimizer steps on the same number of texts per step as in one process."""
    return -(-batch_size // world_size())


def _cpu_processes() -> bool:
    """Several processes on a machine without a GPU: Trainer must be told it runs on CPU, or each process trains
    alone (ParallelMode.NOT_PARALLEL) instead of joining one gloo process group."""
    return world_size() > 1 and not torch.cuda.is_available()


def distill(
    student: PreTrainedModel,
    teacher: PreTrainedModel,
    train_dataset: Sequence[Mapping[str, Any]],
    config: DistillConfig,
    tokenizer: PreTrainedTokenizerBase,
) -> PreTrainedModel:
    """Train `student` to match `teacher` on `train_dataset` (dicts of token features); returns it."""
    if len(train_dataset) == 0:
        raise DistillError("train_dataset is empty; pass tokenized examples (input_ids, attention_mask).")
    if "input_ids" not in train_dataset[0]:
        raise DistillError("train_dataset rows must be tokenized: dicts with 'input_ids' (and attention_mask).")
    with tempfile.TemporaryDirectory() as scratch, seeded(config.seed):
        args = TrainingArguments(
            output_dir=config.output_dir or scratch,
            save_strategy="epoch" if config.output_dir else "no",
            num_train_epochs=config.epochs,
            max_steps=config.max_steps,
            learning_rate=config.learning_rate,
            lr_scheduler_type=config.lr_scheduler_type,
            warmup_steps=config.warmup_ratio,  # transformers 5: a float in [0, 1) is the share of the steps
            weight_decay=config.weight_decay,
            per_device_train_batch_size=per_device_batch(config.batch_size),
            use_cpu=_cpu_processes(),
            seed=config.seed,
            report_to="none",
            remove_unused_columns=False,
            # a redrawn bar in a log file is kilobytes of control characters; data order follows the seed too
            **{"disable_tqdm": not sys.stderr.isatty(), "data_seed": config.seed, **dict(config.training_args)},
        )
        trainer = DistillTrainer(
            model=student,
            args=args,
            train_dataset=_Features(train_dataset),
            data_collator=DataCollatorWithPadding(tokenizer),
            processing_class=tokenizer,
            teacher=teacher,
            distill_config=config,
        )
        trainer.train()
    return student.eval()
