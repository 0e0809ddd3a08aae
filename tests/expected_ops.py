"""The exact runtime-graph op counts of each variant, derived from the PyTorch model's structure (not pasted numbers).

Per layer a transformer has token-wise Linears (query, key, value, attention output, FFN in, FFN out; GPT-2: c_attn,
attn c_proj, c_fc, mlp c_proj) and two activation x activation MatMuls (QK^T, softmax.V). A classifier head reading
one pooled vector (2-D input) exports as Gemm; one reading the sequence (GPT-2's `score`) as MatMul.

- static QDQ (unfused export): every token-wise Linear runs MatMulIntegerToFloat; the attention MatMuls stay float.
- dynamic on the fused graph (BERT-like): one QAttention per layer (q, k, v and both attention MatMuls), every other
  weight MatMul and the head's Gemms DynamicQuantizeMatMul, the embedding QEmbedLayerNormalization (kept only where
  the fused embedding reproduces the model: not RoBERTa's position ids).
- dynamic without fusions (GPT-2): every weight MatMul DynamicQuantizeMatMul, attention MatMuls float.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn


def structure(ckpt: Path) -> dict[str, int]:
    from transformers import AutoModelForSequenceClassification
    from transformers.pytorch_utils import Conv1D

    model = AutoModelForSequenceClassification.from_pretrained(ckpt)
    layers = next(m for m in model.modules() if isinstance(m, nn.ModuleList))
    linear = (nn.Linear, Conv1D)
    in_layers = {id(m) for layer in layers for m in layer.modules() if isinstance(m, linear)}
    heads = [n for n, m in model.named_modules() if isinstance(m, linear) and id(m) not in in_layers]
    sequence_heads = [n for n in heads if n == "score"]  # GPT-2 style: the head reads every position
    return {"layers": len(layers), "token_linears": len(in_layers) + len(sequence_heads),
            "pooled_heads": len(heads) - len(sequence_heads), "model_type": model.config.model_type}


def expected_int8_ops(ckpt: Path, variant: str) -> dict[str, int]:
    s = structure(ckpt)
    fused = s["model_type"] in ("bert", "roberta", "distilbert")
    if variant in ("onnx-int8-static", "onnx-int8-qat"):
        return {"MatMulIntegerToFloat": s["token_linears"]}
    if variant == "onnx-int8-dynamic" and fused:
        ops = {"QAttention": s["layers"], "DynamicQuantizeMatMul": s["token_linears"] - 3 * s["layers"] + s["pooled_heads"]}
        return ops if s["model_type"] == "roberta" else {**ops, "QEmbedLayerNormalization": 1}
    if variant == "onnx-int8-dynamic":
        return {"DynamicQuantizeMatMul": s["token_linears"] + s["pooled_heads"]}
    raise KeyError(variant)


def attention_matmuls(graph: dict) -> int:
    """Float activation x activation MatMuls in a report's runtime graph: ORT folds the 1/sqrt(d) scaling that
    transformers 5's eager attention applies after QK^T into a FusedMatMul, softmax.V stays a MatMul."""
    ops = graph["float_matmul_ops"]
    return ops.get("MatMul", 0) + ops.get("FusedMatMul", 0)


def expected_float_matmuls(ckpt: Path, variant: str) -> int:
    """Float MatMul ops left: the two attention MatMuls per layer, unless QAttention took them."""
    s = structure(ckpt)
    if variant == "onnx-int8-dynamic" and s["model_type"] in ("bert", "roberta", "distilbert"):
        return 0
    return 2 * s["layers"]


def embedding_tables(ckpt: Path) -> int:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(ckpt)
    return sum(isinstance(m, nn.Embedding) for m in model.modules())


def int8_table_gathers(onnx_path: Path) -> int:
    """Gathers that read an int8/uint8 table through a DequantizeLinear (static QDQ's int8 embeddings)."""
    import onnx

    model = onnx.load(str(onnx_path))
    int8 = {t.name for t in model.graph.initializer if t.data_type in (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)}
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int8}
    return sum(n.op_type == "Gather" and n.input[0] in dequantized for n in model.graph.node)
