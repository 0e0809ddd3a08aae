"""What the pipeline needs to know about a task, as one small interface."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase


class Task(ABC):
    name: ClassVar[str]
    export_task: ClassVar[str]          # optimum exporter task name
    ort_model_class: ClassVar[str]      # optimum.onnxruntime class that loads a variant folder
    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    auto_model: ClassVar[Any]           # transformers Auto class

    @abstractmethod
    def check_architecture(self, config: PretrainedConfig, source: str) -> None:
        """Raise CompressError when this task cannot use the checkpoint's architecture."""

    def prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        """Fix up model/tokenizer (e.g. a pad token) before anything runs."""

    @abstractmethod
    def metrics(self, outputs: np.ndarray, references: Any, baseline_outputs: np.ndarray | None) -> dict[str, float]:
        """Task metrics of one variant's outputs, plus agreement with the baseline's."""
