"""Load a variant folder as optimum's ORTModelForCausalLM with pinned threads (the same for timing and chat)."""
from __future__ import annotations

import contextlib
import io
import logging
from pathlib import Path

from export.runtime import session_options


def load_ort_lm(folder: Path, threads: int):
    from optimum.onnxruntime import ORTModelForCausalLM

    logging.getLogger("optimum").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()):
        return ORTModelForCausalLM.from_pretrained(folder, provider="CPUExecutionProvider", session_options=session_options(threads),
                                                   use_cache=True, use_io_binding=False)
