"""The classifier's evaluation: the eval texts tokenized once, scored at batch 1 and in padded batches, timed.

`score` runs every text on its own (batch 1, no padding): that is how a deployed
classifier runs, and dynamic int8's per-call activation scales depend on the padding,
so this is the figure selection uses (the demo's dynamic int8 scored 94.86 on padded
batches of 32 but 94.57 one text at a time).  The padded, length-sorted batches are
kept as `metrics_batch`.  Timing blocks: `latency_samples` texts at batch 1 and up to
8 consecutive padded batches of `batch_size`, each after warm-up calls.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from edge_compress.compress.console import progress
from edge_compress.compress.report.analysis import classification_analysis
from edge_compress.compress.report.noise import accuracy_noise
from edge_compress.compress.report.schema import Analysis, Noise
from edge_compress.compress.tasks.base import Scored
from edge_compress.export.timing import Block, RoundLatency, time_calls

Feed = dict[str, np.ndarray]


class ClassifierEvaluation:
    def __init__(self, texts: list[str], tokenizer, max_length: int, batch_size: int, latency_samples: int, warmup: int,
                 metrics: Callable[[np.ndarray, np.ndarray | None], dict[str, float]] | None = None,
                 labels: Any = None, label_names: list[str] | None = None) -> None:
        """`metrics(outputs, baseline_outputs)`: the task's metrics against the eval labels (None: outputs only, e.g. benches);
        `labels` (ids) and `label_names` (by id) give the report its per-class metrics, confusion and flipped texts."""
        self.size, self.batch_size, self.warmup, self._metrics = len(texts), batch_size, warmup, metrics
        self.raw_texts, self.labels, self.label_names = list(texts), labels, label_names

        def encode(chunk: list[str]) -> Feed:
            return dict(tokenizer(chunk, padding=True, truncation=True, max_length=max_length, return_tensors="np"))
        self.texts = [dict(tokenizer([t], truncation=True, max_length=max_length, return_tensors="np")) for t in texts]
        lengths = [f["input_ids"].shape[1] for f in self.texts]
        self.order = np.argsort(lengths, kind="stable")
        self.batches = [encode([texts[i] for i in self.order[s:s + batch_size]]) for s in range(0, len(texts), batch_size)]
        self.singles = self.texts[:latency_samples]
        self.seq_len = float(np.mean([f["input_ids"].shape[1] for f in self.singles]))
        # Larger batch: consecutive eval texts (not length-sorted), padded as a server would.
        n_big = max(1, min(8, len(texts) // batch_size))
        self.big = [encode(texts[s * batch_size:(s + 1) * batch_size]) for s in range(n_big)]
        self.batch_seq_len = float(np.mean([f["attention_mask"].sum(1).mean() for f in self.big]))
        self.batch_size = int(self.big[0]["input_ids"].shape[0])

    def score(self, run: Callable[[Feed], np.ndarray], label: str) -> Scored:
        single: list[np.ndarray] = []
        batched: list[np.ndarray] = []
        with progress() as bar:
            task = bar.add_task(f"{label}: accuracy (batch 1, then padded batches)", total=len(self.texts) + len(self.batches))
            for feed in self.texts:
                single.append(run(feed))
                bar.advance(task)
            for feed in self.batches:
                batched.append(run(feed))
                bar.advance(task)
        merged = np.empty((self.size, *batched[0].shape[1:]), dtype=np.float32)
        merged[self.order] = np.concatenate(batched)
        return Scored(np.concatenate(single).astype(np.float32), merged)

    def metrics(self, scored: Scored, baseline: Scored | None) -> tuple[dict[str, float], dict[str, float] | None]:
        one = self._metrics(scored.outputs, None if baseline is None else baseline.outputs)
        batch = self._metrics(scored.outputs_batch, None if baseline is None else baseline.outputs_batch)
        return _rounded(one), _rounded(batch)

    def details(self, scored: Scored, baseline: Scored | None, examples: int) -> tuple[Noise | None, Analysis | None]:
        """Noise of the accuracy change and what changed against the float model, at batch 1 (what selection uses)."""
        if self.labels is None:
            return None, None
        labels = np.asarray(self.labels)
        names = self.label_names or [str(i) for i in range(scored.outputs.shape[-1])]
        predictions = scored.outputs.argmax(-1)
        base = None if baseline is None else baseline.outputs.argmax(-1)
        analysis = classification_analysis(predictions, base, labels, names, self.raw_texts, examples)
        noise = None if base is None else accuracy_noise(predictions == labels, base == labels)
        return noise, analysis

    def timing(self, run: Any) -> Block:
        """`run` is a runner (feed -> logits) or a device runner with prepare/timed (inputs placed before timing)."""
        call, prepare = (run.timed, run.prepare) if hasattr(run, "timed") else (run, lambda feed: feed)
        singles, big = [prepare(f) for f in self.singles], [prepare(f) for f in self.big]
        return lambda: {"single": time_calls(call, singles, self.warmup), "batch": time_calls(call, big, min(2, self.warmup))}

    def timing_metrics(self, single: RoundLatency, batch: RoundLatency, extras: dict[str, float]) -> dict[str, float]:
        return {}


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 4) for k, v in metrics.items()}
