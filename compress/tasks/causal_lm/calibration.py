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
import torch
from edge_compress.export.ort_lm import OnnxCausalLM
from transformers import PreTrainedTokenizerBase


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


def prune_windows(tokenizer: PreTrainedTokenizerBase, texts: list[str], context: int, batch_size: int,
                  limit: int) -> list[dict[str, torch.Tensor]]:
    """What decoder pruning scores importance on: the calibration text as one token stream, cut into windows of
    `context` tokens (BOS first in every window for tokenizers that add it), `batch_size` windows per batch, at most
    `limit` batches.

    Windows of the stream, not padded texts, because the LM's own next-token loss is the score: every position is a
    real target with real history, as in the perplexity evaluation (the same window rule), and no left padding shifts
    the positions of short texts (transformers' decoders number positions from the cache, not from the mask).
    """
    from edge_compress.compress.errors import CompressError
    from edge_compress.compress.tasks.causal_lm.evaluate import leading_bos

    bos = leading_bos(tokenizer)
    prefix = [bos] if bos is not None else []
    span = context - len(prefix)
    needed = span * batch_size * limit
    ids: list[int] = []
    for text in texts:  # tokenized text by text (joined by blank lines), up to what the batches use
        ids += tokenizer(("\n\n" if ids else "") + text, add_special_tokens=False)["input_ids"]
        if len(ids) >= needed:
            break
    windows = [prefix + ids[start:start + span] for start in range(0, len(ids) - span + 1, span)]
    if not windows:
        raise CompressError(f"the pruning calibration text holds {len(ids)} tokens, fewer than one window of {span}",
                            "give more calibration text (--calib-data), or lower lm.context in the recipe")
    return [{"input_ids": torch.tensor(windows[start:start + batch_size]),
             "attention_mask": torch.ones(len(windows[start:start + batch_size]), context, dtype=torch.long)}
            for start in range(0, min(len(windows), batch_size * limit), batch_size)]
