"""The two calls a seq2seq model is generated with, for PyTorch and for the exported graphs alike.

    encode(input_ids, attention_mask) -> Encoded(cross: per layer key/value, computed once per source)
    step(tokens [batch, 1], encoder_mask, past, cross) -> (logits [batch, vocab], present)

The PyTorch runner calls the very modules the export traces (export.seq2seq.EncoderGraph/DecoderGraph),
so the float baseline and every ONNX variant go through one generation loop (generate.py) with the same
cache handling: a difference in outputs is the graph's, not the loop's.  The ONNX runner is plain
onnxruntime sessions with pinned threads (export.runtime.session_options): nothing else is needed to ship.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

Cache = list[np.ndarray]   # [layer0.key, layer0.value, layer1.key, ...], each [batch, heads, length, head_dim]


@dataclass
class Encoded:
    cross: Cache
    heads: int
    head_dim: int


class Seq2SeqRunner(Protocol):
    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Encoded: ...

    def step(self, tokens: np.ndarray, encoder_mask: np.ndarray, past: Cache, cross: Cache) -> tuple[np.ndarray, Cache]: ...


def empty_cache(encoded: Encoded, batch: int) -> Cache:
    """The first step's self-attention cache: every layer's keys and values of length 0."""
    empty = np.zeros((batch, encoded.heads, 0, encoded.head_dim), dtype=np.float32)
    return [empty] * len(encoded.cross)


class TorchSeq2Seq:
    """The PyTorch model through the modules the export traces."""

    def __init__(self, model) -> None:
        from edge_compress.export.seq2seq import DecoderGraph, EncoderGraph, shapes

        self.model = model.eval()
        self.encoder = EncoderGraph(model).eval()
        self.decoder = DecoderGraph(model, shapes(model).layers).eval()

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Encoded:
        import torch

        with torch.inference_mode():
            out = self.encoder(torch.from_numpy(input_ids), torch.from_numpy(attention_mask))
        cross = [t.numpy() for t in out[1:]]
        return Encoded(cross, cross[0].shape[1], cross[0].shape[3])

    def step(self, tokens: np.ndarray, encoder_mask: np.ndarray, past: Cache, cross: Cache) -> tuple[np.ndarray, Cache]:
        import torch

        with torch.inference_mode():
            out = self.decoder(torch.from_numpy(tokens), torch.from_numpy(encoder_mask),
                               *[torch.from_numpy(t) for t in past], *[torch.from_numpy(t) for t in cross])
        return out[0][:, -1].float().numpy(), [t.numpy() for t in out[1:]]


class OnnxSeq2Seq:
    """encoder.onnx + decoder.onnx of a variant folder on plain ONNX Runtime sessions; `ort_format`: the
    encoder.ort + decoder.ort of a device package (OUT/package/), which ONNX Runtime opens the same way."""

    def __init__(self, folder: Path, threads: int, provider: str = "cpu", ort_format: bool = False) -> None:
        from edge_compress.export.runtime import create_session
        from edge_compress.export.seq2seq import DECODER_FILE, ENCODER_FILE

        suffix = ".ort" if ort_format else ".onnx"
        self.folder = folder
        self.encoder = create_session(folder / Path(ENCODER_FILE).with_suffix(suffix), threads, provider)
        self.decoder = create_session(folder / Path(DECODER_FILE).with_suffix(suffix), threads, provider)
        self.cross_names = [o.name for o in self.encoder.get_outputs()][1:]
        self.past_names = [i.name for i in self.decoder.get_inputs() if i.name.startswith("past.")]

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> Encoded:
        out = self.encoder.run(None, {"input_ids": input_ids, "attention_mask": attention_mask})
        cross = out[1:]
        return Encoded(cross, cross[0].shape[1], cross[0].shape[3])

    def step(self, tokens: np.ndarray, encoder_mask: np.ndarray, past: Cache, cross: Cache) -> tuple[np.ndarray, Cache]:
        out = self.decoder.run(None, {"decoder_input_ids": tokens, "encoder_attention_mask": encoder_mask,
                                      **dict(zip(self.past_names, past)), **dict(zip(self.cross_names, cross))})
        return out[0][:, -1], out[1:]
