"""Static int8 calibration feeds for both graphs of a translation export, from real sentences.

The encoder's feeds are the calibration sources.  The decoder's are the decode steps the fp32 export
really runs on them: greedy steps (up to `decode_steps` per sentence), each feed holding the token, the
self-attention cache as it was at that step (empty at the first) and the sentence's cross-attention cache.
So the activation ranges are those of generation, cache included: what optimum's dynamic-only seq2seq
int8 cannot give, and what a decoder calibrated on teacher-forced full sequences would miss.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from edge_compress.compress.tasks.translation.generate import Decoding, step_scores
from edge_compress.compress.tasks.translation.runner import OnnxSeq2Seq, empty_cache


def calibration_feeds(folder: Path, tokenizer, sources: list[str], decoding: Decoding, max_source_length: int,
                      decode_steps: int, threads: int) -> dict[str, list[dict[str, np.ndarray]]]:
    runner = OnnxSeq2Seq(folder, threads)
    steps = replace(decoding, max_new_tokens=min(decode_steps, decoding.max_new_tokens), forced_eos=None)
    encoder_feeds: list[dict[str, np.ndarray]] = []
    decoder_feeds: list[dict[str, Any]] = []
    for text in sources:
        batch = tokenizer([text], truncation=True, max_length=max_source_length, return_tensors="np")
        ids, mask = batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)
        encoder_feeds.append({"input_ids": ids, "attention_mask": mask})
        encoded = runner.encode(ids, mask)
        past, token = empty_cache(encoded, 1), np.array([[steps.start]], dtype=np.int64)
        for step in range(steps.max_new_tokens):
            decoder_feeds.append({"decoder_input_ids": token, "encoder_attention_mask": mask,
                                  **dict(zip(runner.past_names, past)), **dict(zip(runner.cross_names, encoded.cross))})
            logits, past = runner.step(token, mask, past, encoded.cross)
            chosen = int(step_scores(logits, steps, step).argmax(axis=-1)[0])
            if chosen in steps.eos:
                break
            token = np.array([[chosen]], dtype=np.int64)
    return {"encoder": encoder_feeds, "decoder": decoder_feeds}
