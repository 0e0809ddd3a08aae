"""Sequence classification: accuracy, macro-F1 and agreement with the float model."""
from __future__ import annotations

from typing import Any

import numpy as np
from transformers import AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES

from compress.console import warn
from compress.errors import CompressError
from compress.tasks.base import Task


def macro_f1(predictions: np.ndarray, labels: np.ndarray) -> float:
    """Unweighted mean of per-class F1 over classes present in labels or predictions."""
    scores = []
    for c in np.union1d(labels, predictions):
        tp = np.sum((predictions == c) & (labels == c))
        fp = np.sum((predictions == c) & (labels != c))
        fn = np.sum((predictions != c) & (labels == c))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


class TextClassification(Task):
    name = "text-classification"
    export_task = "text-classification"
    ort_model_class = "ORTModelForSequenceClassification"
    primary_metric = "accuracy"
    auto_model = AutoModelForSequenceClassification

    def check_architecture(self, config: PretrainedConfig, source: str) -> None:
        if config.model_type not in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
            raise CompressError(f"{source} is a '{config.model_type}' model, which transformers cannot use for sequence classification",
                                "use a classifier checkpoint (BERT, DistilBERT, RoBERTa, MiniLM, GPT-2, ...)")
        archs = config.architectures or []
        if archs and not any(a.endswith("ForSequenceClassification") for a in archs):
            warn(f"{source} was saved as {archs[0]}, not a sequence classifier: its classification head will be "
                 "randomly initialised unless the checkpoint holds one")

    def prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        # GPT-2 style classifiers pick the last non-pad token, so they need a pad id.
        if tokenizer.pad_token is None:
            if tokenizer.eos_token is None:
                raise CompressError("the tokenizer has neither a pad nor an eos token, so batches cannot be padded",
                                    "set tokenizer.pad_token and save the tokenizer again")
            tokenizer.pad_token = tokenizer.eos_token
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tokenizer.pad_token_id

    def metrics(self, outputs: np.ndarray, references: Any, baseline_outputs: np.ndarray | None) -> dict[str, float]:
        if not np.isfinite(outputs).all():
            raise CompressError("the model produced NaN or infinite logits",
                                "the variant is numerically broken; exclude it or check the checkpoint's weights")
        predictions = outputs.argmax(-1)
        labels = np.asarray(references)
        result = {"accuracy": float(np.mean(predictions == labels) * 100), "macro_f1": macro_f1(predictions, labels) * 100}
        if baseline_outputs is not None:
            result["agreement"] = float(np.mean(predictions == baseline_outputs.argmax(-1)) * 100)
            result["max_abs_logit_diff"] = float(np.max(np.abs(outputs - baseline_outputs)))
        return result
