"""Silence library chatter meant for their own developers (tracer warnings, fusion notes, quantizer advice)."""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

NOISY_LOGGERS = ("", "transformers", "torch.onnx", "onnxscript")  # "" = root: ORT's optimizer/quantizer log there


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    loggers = [logging.getLogger(n) for n in NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
