"""Quantization-aware training that exports to an int8 ONNX graph ONNX Runtime runs with integer kernels.

    qat_model, moved = quantization_aware_train(model, tokenizer, texts, labels, QATConfig())
    quantize_int8_static(fp32_export_of(strip_fake_quant(qat_model)), dst, preset, feeds, learned=learned_params(qat_model))

Why hand-written (see README, "Why our own QAT"): the fake quantization must reproduce the graph
ONNX Runtime's static quantizer writes, bit for bit, so the export is that quantizer fed with the
learned ranges; no maintained QAT tool exports int8 to ONNX for the CPU provider.
"""
from importlib import import_module
from typing import Any

# Public name -> submodule, imported on first use (`compress.qat.config`, which the recipe embeds, needs no torch).
_EXPORTS = {"QATConfig": "config", "insert_fake_quant": "modules", "learned_params": "export_params",
            "quantization_aware_train": "train", "strip_fake_quant": "modules"}
__all__ = ["QATConfig", "insert_fake_quant", "learned_params", "quantization_aware_train", "strip_fake_quant"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'edge_compress.compress.qat' has no attribute {name!r}")
    return getattr(import_module(f"edge_compress.compress.qat.{_EXPORTS[name]}"), name)
