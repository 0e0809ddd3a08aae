"""Start/end logits of every window -> one answer span per example, in context characters.

This is the algorithm of transformers' examples/pytorch/question-answering/utils_qa.py
(`postprocess_qa_predictions`), which is an example script, not an importable library function, and
depends on `datasets` objects; it is re-written here over plain arrays. For each window: the `n_best`
highest start and end logits, pairs that lie in the context, end after start and span at most
`max_answer_length` tokens, scored by start + end logit; the best pair over all windows of the
example wins. With `allow_impossible`, the answer is empty when the smallest no-answer score
(start + end logit of the CLS token) beats the best span by more than `null_threshold` (SQuAD v2).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks.question_answering.data import QAExample
from edge_compress.compress.tasks.question_answering.features import QAFeatures


@dataclass
class Span:
    text: str
    start: int          # character offsets in the context; -1 for no answer
    end: int
    score: float


@dataclass
class Prediction:
    id: str
    text: str
    start: int
    end: int
    score: float
    null_score: float
    n_best: list[Span] = field(default_factory=list)


def postprocess(examples: Sequence[QAExample], features: QAFeatures, start_logits: np.ndarray, end_logits: np.ndarray,
                n_best: int = 20, max_answer_length: int = 30, allow_impossible: bool = False,
                null_threshold: float = 0.0) -> dict[str, Prediction]:
    """One Prediction per example id (the best span over all of its windows)."""
    start_logits, end_logits = np.asarray(start_logits, dtype=np.float32), np.asarray(end_logits, dtype=np.float32)
    if start_logits.shape != end_logits.shape or start_logits.shape[0] != len(features):
        raise CompressError(f"logits of shape {start_logits.shape} / {end_logits.shape} do not match {len(features)} windows",
                            "pass the start and end logits of every window, in the order of the features")
    windows: dict[int, list[int]] = {}
    for w, e in enumerate(features.example_index):
        windows.setdefault(int(e), []).append(w)
    predictions = {}
    for e, example in enumerate(examples):
        spans, null_score = [], np.inf
        for w in windows.get(e, []):
            starts, ends, offsets = start_logits[w], end_logits[w], features.offsets[w]
            cls = int(features.cls_index[w])
            null_score = min(null_score, float(starts[cls] + ends[cls]))
            for s in np.argsort(starts)[::-1][:n_best]:
                for t in np.argsort(ends)[::-1][:n_best]:
                    if s >= len(offsets) or t >= len(offsets) or offsets[s] is None or offsets[t] is None:
                        continue
                    if t < s or t - s + 1 > max_answer_length:
                        continue
                    first, last = offsets[s][0], offsets[t][1]
                    spans.append(Span(example.context[first:last], first, last, float(starts[s] + ends[t])))
        spans.sort(key=lambda span: span.score, reverse=True)
        spans = spans[:n_best]
        best = spans[0] if spans else Span("", -1, -1, -np.inf)
        if allow_impossible and null_score - best.score > null_threshold:
            best = Span("", -1, -1, null_score)
        predictions[example.id] = Prediction(example.id, best.text, best.start, best.end, best.score, null_score, spans)
    return predictions
