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
import onnxruntime as ort
from transformers import PreTrainedTokenizerBase

from export.runtime import create_session


def calibration_feeds(model_path: Path, tokenizer: PreTrainedTokenizerBase, texts: list[str], max_length: int,
                      decode_steps: int, threads: int) -> list[dict[str, np.ndarray]]:
    session = create_session(model_path, threads)
    feeds: list[dict[str, np.ndarray]] = []
    for text in texts:
        ids = tokenizer(text, truncation=True, max_length=max_length + decode_steps, return_tensors="np")["input_ids"].astype(np.int64)
        steps = min(decode_steps, ids.shape[1] - 1)
        if steps < 1:
            continue
        prefill = ids[:, :-steps]
        feed = decoder_feed(session, prefill, empty_past(session), 0)
        feeds.append(feed)
        for t in range(ids.shape[1] - steps, ids.shape[1]):
            past = _presents_as_past(session, feed)
            feed = decoder_feed(session, ids[:, t:t + 1], past, t)
            feeds.append(feed)
    return feeds


def decoder_feed(session: ort.InferenceSession, ids: np.ndarray, past: dict[str, np.ndarray], start: int) -> dict[str, np.ndarray]:
    names = {i.name for i in session.get_inputs()}
    length = start + ids.shape[1]
    feed = {"input_ids": ids, "attention_mask": np.ones((1, length), np.int64),
            "position_ids": np.arange(start, length, dtype=np.int64)[None], **past}
    return {k: v for k, v in feed.items() if k in names}


def empty_past(session: ort.InferenceSession) -> dict[str, np.ndarray]:
    """Zero-length cache; the other dims (heads, head size) are fixed numbers in the exported graph."""
    past = {}
    for i in session.get_inputs():
        if i.name.startswith("past_key_values"):
            shape = [d if isinstance(d, int) else 0 for d in i.shape]
            shape[0] = 1
            past[i.name] = np.zeros(shape, np.float16 if "float16" in i.type else np.float32)
    return past


def _presents_as_past(session: ort.InferenceSession, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    outputs = [o.name for o in session.get_outputs() if o.name.startswith("present")]
    values = session.run(outputs, feed)
    return {name.replace("present", "past_key_values", 1): value for name, value in zip(outputs, values)}
