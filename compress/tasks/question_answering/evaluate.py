"""The QA evaluation: eval questions cut into windows once, every window scored at batch 1, spans post-processed.

`score` runs each window (question + part of the context, with the document stride for long
contexts) on its own at its real length, without padding: how a deployed reader runs, and
what dynamic int8's per-call scales see.  The n-best post-processing picks one span per
question over all its windows; EM/F1 are scored against the answers (when the eval data has
them) and span agreement against the float model's answers.  There is no padded-batch score
(`metrics_batch` is null), as for causal LMs.

Timing, per round: `latency_samples` windows at batch 1 at their real lengths (`latency_ms`,
also `metrics.latency_ms_real_lengths`), the same number of windows padded to the full
`qa.max_length` (384 by default: the usual SQuAD window; `metrics.latency_ms_full_window`),
and up to 4 padded batches of `qa.batch_size` consecutive windows (`latency_ms_batch`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from edge_compress.compress.console import progress
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks.base import Scored
from edge_compress.compress.tasks.question_answering.data import QAExample
from edge_compress.compress.tasks.question_answering.features import prepare_features
from edge_compress.compress.tasks.question_answering.metrics import qa_metrics
from edge_compress.compress.tasks.question_answering.postprocess import Prediction, postprocess
from edge_compress.compress.tasks.question_answering.runner import QARunner, window_logits
from edge_compress.compress.tasks.question_answering.spec import QASpec
from edge_compress.export.timing import Block, RoundLatency, time_calls

FULL_WINDOW_TIMED = 64   # windows of max_length tokens timed per round (at most)


@dataclass
class QAOutputs:
    start_logits: np.ndarray          # [windows, max_length]
    end_logits: np.ndarray
    predictions: dict[str, Prediction]

    @property
    def texts(self) -> dict[str, str]:
        return {i: p.text for i, p in self.predictions.items()}


def qa_output_metrics(outputs: QAOutputs, references: Mapping[str, Sequence[str]] | None,
                      baseline: QAOutputs | None) -> dict[str, float]:
    """EM/F1 (with references), span agreement and logit difference (with a baseline). The float model itself, on
    unlabelled data, agrees with itself by definition: 100, so that agreement can be the primary metric."""
    if not (np.isfinite(outputs.start_logits).all() and np.isfinite(outputs.end_logits).all()):
        raise CompressError("the model produced NaN or infinite start/end logits",
                            "the variant is numerically broken; exclude it or check the checkpoint's weights")
    result = qa_metrics(outputs.texts, references, None if baseline is None else baseline.texts)
    if "agreement_exact" in result:
        result["agreement"] = result.pop("agreement_exact")
    if baseline is not None:
        result["max_abs_logit_diff"] = float(max(np.max(np.abs(outputs.start_logits - baseline.start_logits)),
                                                 np.max(np.abs(outputs.end_logits - baseline.end_logits))))
    elif references is None:
        result.update(agreement=100.0, agreement_f1=100.0)
    return result


class QAEvaluation:
    def __init__(self, examples: list[QAExample], tokenizer, spec: QASpec, references: Mapping[str, Sequence[str]] | None,
                 allow_impossible: bool, latency_samples: int, warmup: int) -> None:
        self.examples, self.spec, self.references, self.allow_impossible = examples, spec, references, allow_impossible
        self.features = prepare_features(tokenizer, examples, spec.max_length, spec.doc_stride)
        n, self.warmup = len(self.features), warmup
        self.singles = [self.features.window(i) for i in range(min(latency_samples, n))]
        self.full = [self.features.window(i, trim=False) for i in range(min(latency_samples, n, FULL_WINDOW_TIMED))]
        self.seq_len = float(np.mean([f["input_ids"].shape[1] for f in self.singles]))
        size = min(spec.batch_size, n)
        self.big = [{k: v[s:s + size] for k, v in self.features.inputs.items()}
                    for s in range(0, min(n - size, 3 * size) + 1, size)]
        self.batch_size = size
        self.batch_seq_len = float(np.mean([f["attention_mask"].sum(1).mean() for f in self.big]))

    def summary(self) -> dict[str, Any]:
        """What report.json's eval section says about the windows."""
        per_question = np.bincount(self.features.example_index, minlength=len(self.examples))
        lengths = self.features.inputs["attention_mask"].sum(1)
        return {"windows": len(self.features), "questions_needing_stride": int((per_question > 1).sum()),
                "max_windows_per_question": int(per_question.max()), "mean_window_tokens": round(float(lengths.mean()), 1)}

    def score(self, run: QARunner, label: str) -> Scored:
        with progress() as bar:
            task = bar.add_task(f"{label}: EM/F1 (every window at batch 1)", total=len(self.features))
            start, end = window_logits(run, self.features, on_window=lambda: bar.advance(task))
        predictions = postprocess(self.examples, self.features, start, end, self.spec.n_best, self.spec.max_answer_length,
                                  self.allow_impossible, self.spec.null_threshold)
        return Scored(QAOutputs(start, end, predictions))

    def metrics(self, scored: Scored, baseline: Scored | None) -> tuple[dict[str, float], None]:
        metrics = qa_output_metrics(scored.outputs, self.references, None if baseline is None else baseline.outputs)
        return {k: round(v, 4) for k, v in metrics.items()}, None

    def timing(self, run: Any) -> Block:
        return lambda: {"single": time_calls(run, self.singles, self.warmup), "batch": time_calls(run, self.big, min(2, self.warmup)),
                        "full_window": time_calls(run, self.full, self.warmup)}

    def timing_metrics(self, single: RoundLatency, batch: RoundLatency, extras: dict[str, float]) -> dict[str, float]:
        result = {"latency_ms_real_lengths": round(single.p50, 4)}
        if "full_window" in extras:
            result["latency_ms_full_window"] = round(extras["full_window"], 4)
        return result
