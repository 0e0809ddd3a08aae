"""Per-task knowledge: model class, exporter task, tokenization and metrics.

Adding a task means adding one module with a `Task` subclass and one line in `TASKS`.
"""
from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edge_compress.compress.tasks.base import Task

# name -> "module:class", imported on first use: the recipe (and so `compress --help` and shell completion) reads
# task names without importing torch and transformers.
_REGISTRY = {"text-classification": "edge_compress.compress.tasks.text_classification.task:TextClassification",
             "causal-lm": "edge_compress.compress.tasks.causal_lm.task:CausalLM",
             "question-answering": "edge_compress.compress.tasks.question_answering.task:QuestionAnswering",
             "translation": "edge_compress.compress.tasks.translation.task:Translation"}
TASK_NAMES = tuple(_REGISTRY)


def task_class(name: str) -> type[Task]:
    module, cls = _REGISTRY[name].split(":")
    return getattr(import_module(module), cls)


def get_task(name: str) -> Task:
    from edge_compress.compress.errors import CompressError

    if name not in _REGISTRY:
        raise CompressError(f"unknown task '{name}'", f"use one of: {', '.join(TASK_NAMES)}")
    return task_class(name)()


def __getattr__(name: str) -> Any:
    if name == "TASKS":
        return {task: task_class(task) for task in TASK_NAMES}
    if name == "Task":
        from edge_compress.compress.tasks.base import Task

        return Task
    raise AttributeError(f"module 'edge_compress.compress.tasks' has no attribute {name!r}")
