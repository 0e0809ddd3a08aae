"""Per-task knowledge: model class, exporter task, tokenization and metrics.

Adding a task means adding one module with a `Task` subclass and one line in `TASKS`.
"""
from __future__ import annotations

from compress.tasks.base import Task
from compress.tasks.causal_lm.task import CausalLM
from compress.tasks.question_answering.task import QuestionAnswering
from compress.tasks.text_classification.task import TextClassification

TASKS: dict[str, type[Task]] = {"text-classification": TextClassification, "causal-lm": CausalLM,
                                "question-answering": QuestionAnswering}


def get_task(name: str) -> Task:
    from compress.errors import CompressError

    if name not in TASKS:
        raise CompressError(f"unknown task '{name}'", f"use one of: {', '.join(TASKS)}")
    return TASKS[name]()
