"""Real measurements a searched variant is judged by, as picklable callables (they run in worker processes).

They score exactly what the pipeline's evaluation scores -- classifiers: accuracy one text at a time,
unpadded (compress.tasks.text_classification.evaluate); causal LMs: perplexity over the same windows
(compress.tasks.causal_lm.evaluate) on the KV-cache graph fed an empty cache -- but hold only numpy
arrays, not the run context (tokenizer, torch model, progress bars), so a process pool or Ray can ship
them. Each opens its own one-thread session: candidates are measured side by side. Latency is not
measured here: timings taken next to other busy workers are noise (the pipeline's interleaved rounds
time the chosen variant); the search's `latency` objective needs a measure that adds it, run inline.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from edge_compress.compress.search import proxy
from edge_compress.export.hf_manifest import model_files


def _size(path) -> int:
    return sum(f.stat().st_size for f in model_files(path))


@dataclass(frozen=True)
class ClassifierAccuracy:
    """Accuracy (%) on tokenized eval texts, each fed alone at batch 1."""
    feeds: tuple[dict[str, np.ndarray], ...]
    labels: tuple[int, ...]
    output: str = "logits"

    def __call__(self, candidate) -> dict[str, float]:
        predictions = [int(logits.argmax(-1)[0]) for logits in proxy.outputs(candidate.path, self.feeds, self.output)]
        correct = np.asarray(predictions) == np.asarray(self.labels)
        return {"metric": 100.0 * float(np.mean(correct)), "size_bytes": _size(candidate.path),
                "items": {"correct": correct.astype(np.float64).tolist()}}  # the search's paired bootstrap


@dataclass(frozen=True)
class Perplexity:
    """Perplexity over token windows: (window ids [1, T], tokens scored at its end), as LMEvaluation builds them."""
    windows: tuple[tuple[np.ndarray, int], ...]

    def __call__(self, candidate) -> dict[str, float]:
        import onnx
        from edge_compress.export.ort_lm import PAST_PREFIX, OnnxCausalLM, positions_from_mask

        # The graph's inputs from its header only: a second session of a 300 MB LM costs seconds and its memory again.
        names = {i.name for i in onnx.load(str(candidate.path), load_external_data=False).graph.input}
        cached = any(name.startswith(PAST_PREFIX) for name in names)
        # the run's loop: prefill on a zero-length cache; a graph exported without a cache takes the whole window
        model = OnnxCausalLM(candidate.path, threads=1) if cached else None
        session = None if cached else proxy.session(candidate.path)
        nll, count = [], []
        for ids, new in self.windows:
            mask = np.ones_like(ids)
            if model is not None:
                logits = model.step(ids, mask, positions_from_mask(mask), model.empty_cache(1))[0][0]
            else:
                feed = {k: v for k, v in {"input_ids": ids, "attention_mask": mask}.items() if k in names}
                logits = session.run(["logits"], feed)[0][0]
            n = min(new, ids.shape[1] - 1)
            logp = proxy.log_softmax(logits[-n - 1:-1].astype(np.float64))  # only the scored rows: a 262k vocabulary
            nll.append(-float(logp[np.arange(n), ids[0, -n:]].sum()))
            count.append(n)
        return {"metric": math.exp(sum(nll) / sum(count)), "size_bytes": _size(candidate.path),
                "items": {"nll": nll, "tokens": count}}  # per window: the search's paired bootstrap


@dataclass(frozen=True)
class Timed:
    """`measure` plus `latency_ms`: the median of timed batch-1 calls on `feeds` (one thread, after one warm-up pass).

    For the search's latency/both objectives, run inline: only then is nothing else competing for the cores."""
    measure: object
    feeds: tuple[dict[str, np.ndarray], ...]
    output: str = "logits"

    def __call__(self, candidate) -> dict[str, float]:
        import time

        metrics = dict(self.measure(candidate))
        sess = proxy.session(candidate.path)
        names = {i.name for i in sess.get_inputs()}
        feeds = [{k: v for k, v in f.items() if k in names} for f in self.feeds]
        for feed in feeds:
            sess.run([self.output], feed)
        times = []
        for feed in feeds:
            start = time.perf_counter()
            sess.run([self.output], feed)
            times.append((time.perf_counter() - start) * 1000)
        return {**metrics, "latency_ms": float(np.median(times))}
