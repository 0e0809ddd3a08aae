"""Calibration feeds for a classifier's static int8: one text per feed, the way the model runs."""
from __future__ import annotations

import numpy as np


def calibration_feeds(tokenizer, texts: list[str], method: str, max_length: int) -> list[dict[str, np.ndarray]]:
    """One text per feed at its own length; histogram methods need one shape, so those are padded/truncated
    to the 90th-percentile length (ORT stacks their activations across feeds)."""
    if method == "minmax":
        return [dict(tokenizer([t], truncation=True, max_length=max_length, return_tensors="np")) for t in texts]
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    length = int(np.percentile(lengths, 90))
    return [dict(tokenizer([t], truncation=True, padding="max_length", max_length=length, return_tensors="np")) for t in texts]
