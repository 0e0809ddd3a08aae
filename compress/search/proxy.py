"""The cheap proxy: KL divergence of a candidate's output distribution from the float graph's, on calibration feeds.

Why KL of the logits: it needs no labels, sees every class (or every vocabulary entry) rather than only the
argmax, and is additive over positions, so one number per candidate ranks units by how much they move the
model. It is a proxy: the search verifies every step with the caller's real measurement.

The float reference is computed once and stored as .npy files (one per feed) that worker processes map
read-only, instead of pickling vocabulary-sized arrays into every job.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnxruntime as ort


def session(path: Path, threads: int = 1) -> ort.InferenceSession:
    """One thread per session: candidates already run in parallel, one per worker."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def outputs(path: Path, feeds: Iterable[dict[str, np.ndarray]], output: str, threads: int = 1) -> Iterable[np.ndarray]:
    """`output` of the graph at `path` for each feed (feeds restricted to the graph's inputs), as float32."""
    sess = session(path, threads)
    names = {i.name for i in sess.get_inputs()}
    for feed in feeds:
        yield np.asarray(sess.run([output], {k: v for k, v in feed.items() if k in names})[0], dtype=np.float32)


def save_reference(path: Path, feeds: list[dict[str, np.ndarray]], output: str, folder: Path, threads: int = 1) -> list[Path]:
    """The float graph's log-probabilities per feed, written to `folder`/ref-<i>.npy."""
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i, logits in enumerate(outputs(path, feeds, output, threads)):
        files.append(folder / f"ref-{i}.npy")
        np.save(files[-1], log_softmax(logits))
    return files


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def kl(path: Path, feeds: list[dict[str, np.ndarray]], output: str, reference: list[Path], threads: int = 1) -> float:
    """Mean over every output position of KL(float || candidate), in nats."""
    total, count = 0.0, 0
    for ref_file, logits in zip(reference, outputs(path, feeds, output, threads), strict=True):
        ref = np.load(ref_file, mmap_mode="r")
        p = np.exp(ref)
        per_position = (p * (ref - log_softmax(logits))).sum(axis=-1)
        total += float(per_position.sum())
        count += per_position.size
    return max(total / max(count, 1), 0.0)  # float rounding can make an exact copy read -1e-9
