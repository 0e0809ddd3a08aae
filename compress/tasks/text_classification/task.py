"""Sequence classification: accuracy, macro-F1 and agreement with the float model."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
from edge_compress.compress.console import warn
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks.base import Scored, Task, TaskData, check_head
from transformers import AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES


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
    primary_metric = "accuracy"
    auto_model = AutoModelForSequenceClassification

    def check_architecture(self, config: PretrainedConfig, source: str) -> None:
        check_head(config, source, MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES, "ForSequenceClassification",
                   "sequence classification", "use a classifier checkpoint (BERT, DistilBERT, RoBERTa, MiniLM, GPT-2, ...)",
                   "a sequence classifier: its classification head")

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

    # --- lifecycle steps ------------------------------------------------------------------------------------------

    def load_data(self, options: Any, ckpt: Any, recipe: Any) -> TaskData:
        """Labelled eval texts; calibration = --calib-data, else train.* beside the eval file, else the eval texts (warned).

        Calibration labels are kept when the file has a label column the model knows (pruning's Fisher scores use them).
        """
        from edge_compress.compress.data import load_text_data, load_training_texts, sibling_train_file

        config = ckpt.model.config
        data = load_text_data(options.eval_data, config.label2id, config.num_labels, options.text_column, options.label_column)
        limit = recipe.validate_.max_eval_samples
        if limit:
            data.texts, data.labels = data.texts[:limit], data.labels[:limit]
        source = options.calib_data or sibling_train_file(options.eval_data)
        if source is None:
            warn("no --calib-data and no train file beside the eval file: calibrating (and pruning) on the eval texts")
            calib = data
        else:
            calib = load_training_texts(source, config.label2id, config.num_labels, options.text_column, options.label_column)
        texts = sample(calib.texts, recipe.quantize.static.num_samples, recipe.seed)
        return TaskData(data.texts, data.labels, texts, train=calib,
                        sections={"eval": {"source": data.source, "samples": len(data.texts), "text_column": data.text_column,
                                           "label_column": data.label_column},
                                  "calibration": {"source": calib.source, "samples": len(texts)}})

    def evaluation(self, ckpt: Any, data: TaskData, recipe: Any):
        from edge_compress.compress.tasks.text_classification.evaluate import ClassifierEvaluation

        v = recipe.validate_
        id2label = ckpt.model.config.id2label or {}
        names = [str(id2label.get(i, i)) for i in range(ckpt.model.config.num_labels)]
        return ClassifierEvaluation(data.eval_texts, ckpt.tokenizer, v.max_length, v.batch_size, v.latency_samples, v.warmup,
                                    lambda outputs, baseline: self.metrics(outputs, data.references, baseline),
                                    labels=data.references, label_names=names)

    def check_parity(self, ctx: Any, model: PreTrainedModel, path: Path) -> None:
        """The export must reproduce its PyTorch model on real eval texts (the exporter traced one sample only)."""
        from edge_compress.compress.run.measure import onnx_runner, torch_runner

        torch_run, onnx_run = torch_runner(model), onnx_runner(path, ctx.threads)
        diff = max(float(np.max(np.abs(torch_run(f) - onnx_run(f)))) for f in parity_batches(ctx.evaluation.batches))
        atol = ctx.recipe.export.parity_atol
        if diff > atol:
            raise CompressError(f"the ONNX export disagrees with PyTorch: max |logit difference| {diff:.2e} > {atol:g} "
                                "on the eval texts", "export with another opset (export.opset), or raise export.parity_atol in "
                                                     "the recipe if the difference is acceptable")

    def open_torch(self, model: PreTrainedModel) -> Any:
        from edge_compress.compress.run.measure import torch_runner

        return torch_runner(model)

    def open_onnx(self, path: Path, threads: int, target: Any = None, precision: str = "fp32", ctx: Any = None) -> Any:
        from edge_compress.compress.run.measure import onnx_runner

        if target is None or target.name == "cpu":
            return onnx_runner(path, threads)
        from edge_compress.export.device import TargetRunner

        return TargetRunner(path, target, precision, threads, ctx.evaluation.batch_size, ctx.recipe.validate_.max_length)

    def package_check(self, ctx: Any, path: Path, baseline: Scored) -> dict[str, Any]:
        from edge_compress.compress.run.measure import onnx_runner

        scored = ctx.evaluation.score(onnx_runner(path, ctx.threads), f"package/{path.name}")
        metrics, _ = ctx.evaluation.metrics(scored, baseline)
        return {"metrics": metrics, "open": lambda: onnx_runner(path, ctx.threads)}


def sample(texts: list[str], n: int, seed: int) -> list[str]:
    """`n` texts in a shuffled order fixed by the recipe's seed: the same calibration set on every run."""
    texts = list(texts)
    random.Random(seed).shuffle(texts)
    return texts[:n]


def parity_batches(batches: list, count: int = 4) -> list:
    """The shortest and the longest of the length-sorted eval batches: an export that drifts only on long texts
    (position embeddings, attention masks past a length) must be refused too, not just reported."""
    if len(batches) <= count:
        return list(batches)
    return batches[:count // 2] + batches[-(count - count // 2):]
