"""One ONNX model on one deployment target, fed the way a server on that target would feed it.

On a GPU, inputs copied from the host and outputs copied back would be timed
with the model unless they are placed on the device first, so timing goes
through ONNX Runtime's I/O binding: `prepare` copies a feed to the device once
(untimed), `timed` runs on the bound device buffers.  Accuracy runs use plain
`session.run` (numpy in, numpy out).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from edge_compress.export.runtime import session_options
from edge_compress.export.targets import Target, session_providers


class TargetRunner:
    def __init__(self, path: Path, target: Target, precision: str, threads: int, max_batch: int, max_seq: int,
                 output: str = "logits") -> None:
        self.target, self.output = target, output
        self._cache = tempfile.TemporaryDirectory(prefix="trt-engines-")  # lives as long as the session
        inputs = _input_names(path)
        providers = session_providers(target, precision, inputs, max_batch, max_seq, Path(self._cache.name))
        self.session = ort.InferenceSession(str(path), sess_options=session_options(threads), providers=providers)
        if self.session.get_providers()[0] != target.providers[0]:
            raise RuntimeError(f"{target.providers[0]} did not start for {path.name}; the session fell back to "
                               f"{self.session.get_providers()}")
        self.names = set(inputs)

    def __call__(self, feed: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run([self.output], self._inputs(feed))[0]

    def prepare(self, feed: dict[str, np.ndarray]) -> Any:
        """What `timed` consumes: the feed itself on the CPU; an I/O binding with device-resident inputs on a GPU."""
        if self.target.device == "cpu":
            return self._inputs(feed)
        binding = self.session.io_binding()
        values = {k: ort.OrtValue.ortvalue_from_numpy(v, self.target.device, 0) for k, v in self._inputs(feed).items()}
        for name, value in values.items():
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(self.output, self.target.device, 0)
        return binding, values  # the OrtValues must outlive the binding

    def timed(self, prepared: Any) -> None:
        if self.target.device == "cpu":
            self.session.run([self.output], prepared)
            return
        binding, _ = prepared
        self.session.run_with_iobinding(binding)
        binding.synchronize_outputs()

    def _inputs(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {k: v for k, v in feed.items() if k in self.names}


def _input_names(path: Path) -> list[str]:
    import onnx

    return [i.name for i in onnx.load(str(path), load_external_data=False).graph.input]
