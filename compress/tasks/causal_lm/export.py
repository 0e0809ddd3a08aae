"""PyTorch causal LM -> one ONNX decoder with KV cache that ORTModelForCausalLM loads and generates with.

optimum writes a single `model.onnx` taking `past_key_values.*` (empty at prefill) and
returning `present.*`.  We then check the cache really is there, store tied
embedding / LM-head weights once, and turn weight Gemms into MatMul + Add.
"""
from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase

from compress.errors import CompressError
from export.gemm import gemms_to_matmuls
from export.onnx_export import ExportError, export_to_onnx
from export.onnx_io import load_model, save_model
from export.tied import dedupe_tied

EXPORT_TASK = "text-generation-with-past"


def export_causal_lm(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path, opset: int | None = None) -> Path:
    """Export with past key/values into `folder` (model.onnx, config, generation config, tokenizer)."""
    try:
        path = export_to_onnx(model, folder, EXPORT_TASK, opset)
    except ExportError as err:
        no_past = "with-past" in str(err) or "past" in str(err.__cause__ or "")
        raise CompressError(str(err), "this architecture has no KV-cache ONNX export in optimum: upgrade optimum-onnx, or use a "
                                      "supported decoder (GPT-2, Llama, Gemma, Qwen, Mistral, ...)" if no_past else
                                      "check that optimum supports this architecture (optimum-cli export onnx --help) or set export.opset") from err
    onnx_model = load_model(path)
    if not any(i.name.startswith("past_key_values") for i in onnx_model.graph.input):
        raise CompressError(f"the ONNX export of the {model.config.model_type} model has no past_key_values inputs, so every "
                            "generated token would recompute the whole prompt",
                            "use an optimum-onnx version whose exporter supports text-generation-with-past for this architecture")
    if dedupe_tied(onnx_model) + gemms_to_matmuls(onnx_model):
        save_model(onnx_model, path)
    tokenizer.save_pretrained(folder)
    model.generation_config.save_pretrained(folder)
    return path
