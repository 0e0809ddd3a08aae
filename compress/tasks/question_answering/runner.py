"""One model call on one feed -> (start logits, end logits): what the QA evaluation scores and times.

measure.torch_runner / onnx_runner return one named output; a QA model has two, and
running the graph twice to get both would double every figure, so these fetch both in one call.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

Feed = dict[str, np.ndarray]
Logits = tuple[np.ndarray, np.ndarray]
QARunner = Callable[[Feed], Logits]
OUTPUTS = ["start_logits", "end_logits"]


def torch_qa_runner(model: torch.nn.Module) -> QARunner:
    def run(feed: Feed) -> Logits:
        with torch.inference_mode():
            out = model(**{k: torch.from_numpy(v) for k, v in feed.items()})
        return out.start_logits.float().numpy(), out.end_logits.float().numpy()
    return run


def onnx_qa_runner(path: Path, threads: int, provider: str = "cpu") -> QARunner:
    from edge_compress.export.runtime import create_session

    session = create_session(path, threads, provider)
    names = {i.name for i in session.get_inputs()}

    def run(feed: Feed) -> Logits:
        start, end = session.run(OUTPUTS, {k: v for k, v in feed.items() if k in names})
        return start, end
    return run


def window_logits(run: QARunner, features, windows: range | None = None, on_window: Callable[[], None] | None = None) -> Logits:
    """Every window (or `windows`) run at batch 1 without its padding, as a deployed model runs, and its logits put
    back at the window's positions in [windows, max_length] arrays (padding positions get -1e4, never chosen), so
    post-processing reads them against the window's offsets."""
    indices = windows if windows is not None else range(len(features))
    width = features.inputs["input_ids"].shape[1]
    start = np.full((len(indices), width), -1e4, dtype=np.float32)
    end = np.full((len(indices), width), -1e4, dtype=np.float32)
    for row, i in enumerate(indices):
        feed = features.window(i)
        s, e = run(feed)
        length = feed["input_ids"].shape[1]
        where = slice(width - length, width) if features.inputs["attention_mask"][i, 0] == 0 else slice(0, length)
        start[row, where], end[row, where] = s[0], e[0]
        if on_window is not None:
            on_window()
    return start, end
