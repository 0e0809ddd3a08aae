"""Calibration inputs for static int8 that cover both phases of generation.

A decoder runs in two regimes with different activation ranges: prefill (many
tokens, empty cache) and decode (one token, full cache).  Calibrating on prefill
alone mis-scales decode, which is where almost all generated tokens come from; so
each calibration text gives one prefill feed and `decode_steps` single-token feeds
with the real KV cache, produced by running the fp32 graph itself.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import PreTrainedTokenizerBase

from export.ort_lm import OnnxCausalLM


def calibration_feeds(model_path: Path, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int,
                      decode_steps: int, threads: int) -> list[dict[str, np.ndarray]]:
    lm = OnnxCausalLM(model_path, threads)
    feeds: list[dict[str, np.ndarray]] = []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=max_length + decode_steps, return_tensors="np")["input_ids"].astype(np.int64)
        steps = min(decode_steps, ids.shape[1] - 1)
        if steps < 1:
            continue
        cache = lm.empty_cache(1)
        start = 0
        for end in [ids.shape[1] - steps, *range(ids.shape[1] - steps + 1, ids.shape[1] + 1)]:
            feed = lm.feed(ids[:, start:end], np.ones((1, end), np.int64), np.arange(start, end)[None], cache)
            feeds.append(feed)
            if end < ids.shape[1]:
                _, cache = lm.step(ids[:, start:end], np.ones((1, end), np.int64), np.arange(start, end)[None], cache)
            start = end
    return feeds
