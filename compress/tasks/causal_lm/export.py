"""PyTorch causal LM -> one ONNX decoder with KV cache that `compress generate`, our ONNX Runtime loop
(`export.ort_lm`) and `transformers.exporters.ExportedModel.from_pretrained(folder)` load and generate with.

`export.lm_export` writes the graph through transformers' exporter (prefill on a zero-length cache and decode in one
graph); here we check the cache really is there, store tied embedding / LM-head weights once, turn weight Gemms
into MatMul + Add, drop the exporter's intermediate shapes, and finish the folder: weights in model.onnx.data,
export.json, tokenizer, generation config.
"""
from __future__ import annotations

from pathlib import Path

from edge_compress.compress.errors import CompressError
from edge_compress.export.gemm import gemms_to_matmuls
from edge_compress.export.hf_manifest import DATA_SUFFIX, finish_folder, read_manifest
from edge_compress.export.lm_export import NoKVCacheError, export_causal_lm_graph
from edge_compress.export.onnx_export import ExportError
from edge_compress.export.onnx_io import load_model, save_model
from edge_compress.export.ort_lm import PAST_PREFIX
from edge_compress.export.tied import dedupe_tied, unfuse_tied_head
from transformers import PreTrainedModel, PreTrainedTokenizerBase

SUPPORTED = "GPT-2, Llama, Mistral, Qwen 2/3, Gemma 1-4"


def export_causal_lm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path, opset: int | None = None) -> Path:
    """Export with past key/values into `folder` (model.onnx + model.onnx.data, export.json, config, tokenizer)."""
    try:
        path = export_causal_lm_graph(model, folder, opset)
    except NoKVCacheError as err:
        raise CompressError(str(err), f"this architecture has no plain KV-cache ONNX export; use a supported decoder "
                                      f"({SUPPORTED})") from err
    except ExportError as err:
        raise CompressError(str(err), "check that transformers.exporters exports this architecture "
                                      "(transformers.exporters.OnnxExporter), or set export.opset in the recipe") from err
    onnx_model = load_model(path)
    if not any(i.name.startswith(PAST_PREFIX) for i in onnx_model.graph.input):
        raise CompressError(f"the ONNX export of the {model.config.model_type} model has no {PAST_PREFIX}* inputs, so every "
                            "generated token would recompute the whole prompt",
                            f"use a decoder whose cache transformers.exporters exports ({SUPPORTED})")
    unfuse_tied_head(onnx_model)
    dedupe_tied(onnx_model)
    gemms_to_matmuls(onnx_model)
    # The exporter's intermediate shapes, some stale after its fusions, fail ONNX's shape inference, which the
    # quantizers run: dropped, so inference recomputes them.
    del onnx_model.graph.value_info[:]
    (folder / (path.name + DATA_SUFFIX)).unlink()
    save_model(onnx_model, path)
    finish_folder(folder, read_manifest(folder))
    path.with_name(path.name + "_data").unlink(missing_ok=True)  # save_model's sidecar for > 2 GB, now in model.onnx.data
    tokenizer.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    return path
