"""The translation evaluation: every eval sentence translated at batch 1, BLEU/chrF and agreement, encoder/decoder timing.

Sources are tokenized once, so every model sees the same ids.  `score` translates each sentence on its
own (greedy, or beam search with `translation.num_beams`), as a deployed translator runs; the outputs
are detokenized with the checkpoint's tokenizer and scored by sacrebleu (metrics.py).  The float model
scores itself against the references only; its agreement figures are 100 by definition, which lets
`exact_match_vs_float` be the primary metric when the data has no references.

Timing, per round, on `validate.latency_samples` sentences: the whole translation at batch 1
(`latency_ms`, also `ms_per_sentence`), the encoder call alone (`encoder_ms`), the decoder steps
(`decode_ms_per_token`: decoder time over generated tokens), and padded batches of
`translation.batch_size` sentences translated greedily together (`latency_ms_batch`).
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from edge_compress.compress.console import progress
from edge_compress.compress.tasks.base import Scored
from edge_compress.compress.tasks.translation.generate import Decoding, greedy, translate_ids
from edge_compress.compress.tasks.translation.metrics import translation_metrics
from edge_compress.compress.tasks.translation.runner import Seq2SeqRunner
from edge_compress.export.timing import Block, RoundLatency, time_calls

Feed = tuple[np.ndarray, np.ndarray]


class TranslationEvaluation:
    def __init__(self, sources: Sequence[str], references: Sequence[str] | None, tokenizer, decoding: Decoding,
                 max_source_length: int, batch_size: int, latency_samples: int, warmup: int) -> None:
        self.references, self.tokenizer, self.decoding, self.warmup = references, tokenizer, decoding, warmup
        encoded = tokenizer(list(sources), truncation=True, max_length=max_source_length)
        full = tokenizer(list(sources), truncation=False)["input_ids"]
        self.truncated = sum(len(ids) > max_source_length for ids in full)
        self.singles: list[Feed] = [(np.array([ids], dtype=np.int64), np.array([mask], dtype=np.int64))
                                    for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"])]
        self.timed = self.singles[:latency_samples]
        self.seq_len = float(np.mean([f[0].shape[1] for f in self.timed]))
        size = min(batch_size, len(self.singles))
        self.big = []
        for start in range(0, min(len(sources) - size, 3 * size) + 1, size):
            batch = tokenizer(list(sources[start:start + size]), truncation=True, max_length=max_source_length,
                              padding=True, return_tensors="np")
            self.big.append((batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)))
        self.batch_size = size
        self.batch_seq_len = float(np.mean([m.sum(1).mean() for _, m in self.big]))

    def summary(self) -> dict[str, Any]:
        lengths = [f[0].shape[1] for f in self.singles]
        return {"mean_source_tokens": round(float(np.mean(lengths)), 1), "max_source_tokens": int(max(lengths)),
                "truncated_sources": self.truncated, "decoding": "greedy" if self.decoding.num_beams == 1 else
                f"beam search, {self.decoding.num_beams} beams, length penalty {self.decoding.length_penalty:g}",
                "max_new_tokens": self.decoding.max_new_tokens, "decoder_start_token_id": self.decoding.start}

    def translate(self, runner: Seq2SeqRunner, feed: Feed) -> list[list[int]]:
        return translate_ids(runner, feed[0], feed[1], self.decoding)

    def score(self, runner: Seq2SeqRunner, label: str) -> Scored:
        ids = []
        with progress() as bar:
            task = bar.add_task(f"{label}: translating (batch 1)", total=len(self.singles))
            for feed in self.singles:
                ids.append(self.translate(runner, feed)[0])
                bar.advance(task)
        texts = self.tokenizer.batch_decode(ids, skip_special_tokens=True)
        return Scored([t.strip() for t in texts])

    def metrics(self, scored: Scored, baseline: Scored | None) -> tuple[dict[str, float], None]:
        outputs = scored.outputs
        if self.references is None and baseline is None:  # the float model on unlabelled data agrees with itself
            metrics = {"exact_match_vs_float": 100.0, "bleu_vs_float": 100.0, "chrf_vs_float": 100.0}
        else:
            metrics = translation_metrics(outputs, self.references, None if baseline is None else baseline.outputs)
        if "exact_match_vs_float" in metrics:  # `agreement` is the key every report reader shows (summary, cards, gate)
            metrics["agreement"] = metrics["exact_match_vs_float"]
        metrics["empty_outputs"] = float(sum(not o for o in outputs))
        return {k: round(v, 4) for k, v in metrics.items()}, None

    def timing(self, runner: Seq2SeqRunner) -> Block:
        def block() -> dict[str, list[float]]:
            parts = _PartTimer(runner)
            for i in range(self.warmup):
                self.translate(parts, self.timed[i % len(self.timed)])
            parts.calls.clear()
            single = time_calls(lambda f: self.translate(parts, f), self.timed, 0)
            encoder_ms, decode_ms, steps = parts.totals()
            batch = time_calls(lambda f: greedy(runner, f[0], f[1], self.decoding), self.big, min(2, self.warmup))
            return {"single": single, "batch": batch, "encoder_ms": [encoder_ms / len(self.timed)],
                    "decode_ms_per_token": [decode_ms / max(steps, 1)]}
        return block

    def timing_metrics(self, single: RoundLatency, batch: RoundLatency, extras: dict[str, float]) -> dict[str, float]:
        result = {"ms_per_sentence": round(single.p50, 4)}
        for name in ("encoder_ms", "decode_ms_per_token"):
            if name in extras:
                result[name] = round(extras[name], 4)
        return result


class _PartTimer:
    """The runner with its encoder and decoder calls timed one by one (perf_counter around each call)."""

    def __init__(self, runner: Seq2SeqRunner) -> None:
        self.runner = runner
        self.calls: list[tuple[str, float]] = []

    def encode(self, input_ids, attention_mask):
        start = time.perf_counter()
        out = self.runner.encode(input_ids, attention_mask)
        self.calls.append(("encoder", (time.perf_counter() - start) * 1000.0))
        return out

    def step(self, tokens, encoder_mask, past, cross):
        start = time.perf_counter()
        out = self.runner.step(tokens, encoder_mask, past, cross)
        self.calls.append(("decoder", (time.perf_counter() - start) * 1000.0))
        return out

    def totals(self) -> tuple[float, float, int]:
        """Encoder ms, decoder ms and decoder calls (for beam search one call advances every beam by a token)."""
        encoder = sum(ms for part, ms in self.calls if part == "encoder")
        decoder = [ms for part, ms in self.calls if part == "decoder"]
        return encoder, sum(decoder), len(decoder)
