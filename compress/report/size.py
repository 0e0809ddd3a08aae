"""Where a model's bytes sit: embeddings, the encoder/decoder blocks, the head, and the rest.

Computed from the ONNX initializers (what the file stores), each mapped to a part by a
small declarative table per architecture family.  A name is matched first as it is
(`bert.embeddings.word_embeddings.weight`); weights the exporter renamed
(`onnx::MatMul_123`, `..._quantized`, `Attention_0_qkv_weight`) are matched through the
nodes that read them (`/bert/encoder/layer.0/attention/self/query/MatMul`), following
DequantizeLinear/Transpose/... hops, and then by the op that reads them (a fused
Attention lives in a block; EmbedLayerNormalization is the embeddings).  What no rule
claims lands in `other`, so the parts always sum to the file's initializer bytes.

Why it matters: the word embeddings are 52 % of MiniLM-L6 (46.9 of 90.9 MB) and stay
float in dynamic int8, which is why int8 stops near 4x; the breakdown shows that at a glance.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from edge_compress.compress.report.schema import SizeBreakdown


@dataclass(frozen=True)
class Family:
    model_types: tuple[str, ...]
    blocks: str                                # the blocks' display name
    rules: tuple[tuple[str, str], ...]         # (part, regex on the dotted name), first match wins


_HEAD = ("head", r"(^|\.)(pooler|classifier|pre_classifier|qa_outputs|lm_head|score|vocab_projector|vocab_transform)(\.|$)")
FAMILIES: dict[str, Family] = {
    "encoder": Family(("bert", "roberta", "xlm-roberta", "distilbert", "electra", "deberta", "deberta-v2", "albert", "mpnet",
                       "camembert", "modernbert"), "encoder blocks",
                      (("embeddings", r"(^|\.)embeddings(\.|$)"), ("encoder blocks", r"(^|\.)(layer|layers)\.\d+(\.|$)"), _HEAD)),
    "gpt2": Family(("gpt2", "gpt_neo", "gptj", "codegen"), "decoder blocks",
                   (("embeddings", r"(^|\.)(wte|wpe)(\.|$)"), ("decoder blocks", r"(^|\.)h\.\d+(\.|$)"),
                    ("head", r"(^|\.)(ln_f|lm_head|score)(\.|$)"))),
    "llama": Family(("llama", "gemma", "gemma2", "gemma3_text", "qwen2", "qwen3", "mistral", "phi3", "smollm3", "olmo2"),
                    "decoder blocks",
                    (("embeddings", r"(^|\.)embed_tokens(\.|$)"), ("decoder blocks", r"(^|\.)layers\.\d+(\.|$)"),
                     ("head", r"(^|\.)(norm|lm_head|score)(\.|$)"))),
}
GENERIC = Family((), "blocks", (("embeddings", r"(^|\.)(embeddings|embed_tokens|wte|wpe)(\.|$)"),
                                ("blocks", r"(^|\.)(layer|layers|h|block|blocks)\.\d+(\.|$)"), _HEAD))
# Fused ONNX Runtime ops whose names carry no module path: the op says which part reads the weight.
OP_PARTS = {"EmbedLayerNormalization": "embeddings", "Gather": "embeddings", "GatherBlockQuantized": "embeddings",
            "QEmbedLayerNormalization": "embeddings", "Attention": "blocks", "QAttention": "blocks",
            "MultiHeadAttention": "blocks", "GroupQueryAttention": "blocks", "SkipLayerNormalization": "blocks",
            "SkipSimplifiedLayerNormalization": "blocks", "BiasGelu": "blocks", "FastGelu": "blocks", "RotaryEmbedding": "blocks"}
# Ops a weight passes through before the op that uses it (quantized and transposed weights).
PASS_THROUGH = {"DequantizeLinear", "QuantizeLinear", "Transpose", "Cast", "Reshape", "Identity", "Unsqueeze", "Squeeze"}
ORDER = ("embeddings", "blocks", "head", "other")


def family_for(model_type: str | None) -> tuple[str, Family]:
    for name, family in FAMILIES.items():
        if model_type in family.model_types:
            return name, family
    return "generic", GENERIC


def _dotted(name: str) -> str:
    return name.strip("/").replace("/", ".")


def _match(family: Family, name: str) -> str | None:
    dotted = _dotted(name)
    for part, pattern in family.rules:
        if re.search(pattern, dotted):
            return part
    return None


def _ordered(parts: dict[str, int], family: Family) -> dict[str, int]:
    names = [family.blocks if p == "blocks" else p for p in ORDER]
    merged: dict[str, int] = {}
    for key, value in parts.items():
        key = family.blocks if key == "blocks" else key
        merged[key] = merged.get(key, 0) + value
    return {k: merged[k] for k in names if merged.get(k)} | {k: v for k, v in merged.items() if k not in names and v}


def tensor_bytes(tensor) -> int:
    """Bytes the file stores for one initializer (external data: its recorded length)."""
    import onnx
    from onnx import numpy_helper

    if tensor.data_location == onnx.TensorProto.EXTERNAL:
        entries = {e.key: e.value for e in tensor.external_data}
        if "length" in entries:
            return int(entries["length"])
        return int(numpy_helper.to_array(tensor, base_dir="").nbytes)
    if tensor.raw_data:
        return len(tensor.raw_data)
    return int(numpy_helper.to_array(tensor).nbytes)


def onnx_breakdown(path: Path, model_type: str | None) -> SizeBreakdown:
    """Initializer bytes of `path` per part (external data is not read: its length is in the graph)."""
    import onnx
    from edge_compress.compress.run.measure import onnx_size

    name, family = family_for(model_type)
    graph = onnx.load(str(path), load_external_data=False).graph
    consumers: dict[str, list] = {}
    for node in graph.node:
        for value in node.input:
            consumers.setdefault(value, []).append(node)
    parts: dict[str, int] = {}
    total = 0
    for init in graph.initializer:
        size = tensor_bytes(init)
        total += size
        part = _part(init, consumers, family)
        parts[part] = parts.get(part, 0) + size
    return SizeBreakdown(_ordered(parts, family), total, onnx_size(path), name)


def size_breakdown(path: Path, model_type: str | None) -> SizeBreakdown | None:
    """`onnx_breakdown`, or None with a warning: a report-only figure must not fail a variant that built and scored."""
    try:
        return onnx_breakdown(path, model_type)
    except Exception as err:  # noqa: BLE001  (a report-only figure: warned, never fatal)
        from edge_compress.compress.console import warn

        warn(f"size breakdown of {path} left out: {type(err).__name__}: {err}")
        return None


def _part(init, consumers: dict[str, list], family: Family) -> str:
    part = _match(family, init.name)
    if part is not None:
        return part
    readers, frontier, seen = [], [init.name], set()
    for _ in range(3):   # the weight, then up to two pass-through hops (DequantizeLinear -> Transpose -> MatMul)
        following = []
        for value in frontier:
            for node in consumers.get(value, []):
                if id(node) in seen:
                    continue
                seen.add(id(node))
                if node.op_type in PASS_THROUGH:
                    following += list(node.output)
                else:
                    readers.append(node)
        frontier = following
    for node in readers:
        part = _match(family, node.name)
        if part is not None:
            return part
    for node in readers:
        op_part = OP_PARTS.get(node.op_type)
        if op_part is not None and (op_part != "embeddings" or node.op_type != "Gather" or len(init.dims) == 2):
            return op_part
    return "other"


def torch_breakdown(model, weights_bytes: int | None) -> SizeBreakdown:
    """The PyTorch baseline by parameter and buffer names (a tied weight counted once, where it first appears)."""
    name, family = family_for(getattr(model.config, "model_type", None))
    parts: dict[str, int] = {}
    seen: set[int] = set()
    total = 0
    for key, tensor in model.state_dict().items():
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen:
            continue
        seen.add(pointer)
        size = tensor.numel() * tensor.element_size()
        total += size
        part = _match(family, key) or "other"
        parts[part] = parts.get(part, 0) + size
    return SizeBreakdown(_ordered(parts, family), total, weights_bytes or total, name)
