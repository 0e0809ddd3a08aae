"""Calibration feeds for a QA model's static int8: real question + context windows, one window per feed.

The windows are cut exactly as at evaluation (same max_length and document stride), so the ranges
are those of the inputs the model will see: a question, [SEP], and a stretch of passage.  minmax takes
each window at its own length; histogram methods (entropy, percentile) need one shape across feeds
(ONNX Runtime stacks their activations), so those windows are padded to the longest one chosen.
"""
from __future__ import annotations

import random

import numpy as np
from edge_compress.compress.tasks.question_answering.data import QAExample
from edge_compress.compress.tasks.question_answering.features import prepare_features


def calibration_feeds(tokenizer, examples: list[QAExample], method: str, max_length: int, doc_stride: int,
                      windows: int, seed: int = 0) -> list[dict[str, np.ndarray]]:
    features = prepare_features(tokenizer, examples, max_length, doc_stride)
    chosen = list(range(len(features)))
    random.Random(seed).shuffle(chosen)
    chosen = sorted(chosen[:windows])
    if method == "minmax":
        return [features.window(i) for i in chosen]
    mask = features.inputs["attention_mask"]
    length = int(max(mask[i].sum() for i in chosen))
    left = bool((mask[:, 0] == 0).any())  # a left-padding tokenizer keeps the tail
    cut = slice(max_length - length, max_length) if left else slice(0, length)
    return [{k: v[i:i + 1, cut] for k, v in features.inputs.items()} for i in chosen]
