"""ONNX Runtime graph fusions (attention, LayerNorm, GELU) through ORT's transformer optimizer, called directly.

ORT's session applies generic fusions on its own; the transformer optimizer
(`onnxruntime.transformers.optimizer`) adds the ones it cannot find alone: one `Attention` per
layer, `SkipLayerNormalization`, `BiasGelu`, `EmbedLayerNormalization`.  Dynamic int8 then runs
them as `QAttention` / `QEmbedLayerNormalization`, the fastest int8 layout on CPU.  It needs to be
told which family of graph it reads (below) and the head count and width the fusions check shapes against.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_compress.export.hf_manifest import MODEL_FILE
from edge_compress.export.quiet import quiet

# transformers model_type -> the graph family ORT's optimizer fuses (after optimum's ORTConfigManager table, which made
# the same calls; its seq2seq, vision and rotary-decoder entries left out: this project fuses encoders and GPT-2 kin).
ORT_MODEL_TYPES: dict[str, str] = {
    "albert": "bert", "bert": "bert", "big_bird": "bert", "camembert": "bert", "deberta": "bert", "deberta-v2": "bert",
    "distilbert": "bert", "electra": "bert", "modernbert": "bert", "mpnet": "bert", "nystromformer": "bert",
    "roberta": "bert", "xlm-roberta": "bert",
    "bloom": "gpt2", "codegen": "gpt2", "gpt2": "gpt2", "gpt_bigcode": "gpt2", "gpt_neo": "gpt2", "gptj": "gpt2",
}


# Embeddings that count positions from the padding id. ORT fuses them exactly, by feeding the computed positions
# through EmbedLayerNormalization's position_ids input; dynamic int8's QEmbedLayerNormalization has no such input
# and reads rows 0..S-1 ('input index out of range' at run time), so their embeddings are not fused.
POSITIONS_FROM_PADDING = frozenset({"camembert", "roberta", "xlm-roberta"})


@dataclass(frozen=True)
class Level:
    """What a recipe's `optimize.level` asks of ORT: its own session optimizations first, then the fusions."""
    ort_level: int            # optimize_model's opt_level: 1 basic, 2 extended (CPU-specific fused ops)
    gelu_approximation: bool  # GELU -> tanh approximation (FastGelu): faster, not bit-faithful


LEVELS: dict[int, Level] = {1: Level(1, False), 2: Level(2, False), 3: Level(2, True)}


def optimizer_supports(model_type: str) -> bool:
    """Whether ORT's transformer optimizer has fusions for this architecture."""
    return model_type in ORT_MODEL_TYPES


def optimize_graph(src_dir: Path, out_dir: Path, level: int = 2, fuse_embeddings: bool = True, config: Any = None) -> Path:
    """Fuse `src_dir/model.onnx` at `level` into `out_dir/model.onnx`; `config`: the model's transformers config
    (default: `src_dir/config.json`, which every variant folder holds).

    `fuse_embeddings` turns on the EmbedLayerNormalization fusion (11 fewer nodes on MiniLM; dynamic int8 then
    quantizes it as one QEmbedLayerNormalization).  It is left out where it would need computed position ids
    (POSITIONS_FROM_PADDING); callers still check the result against the model and retry without it on a mismatch.
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    if config is None:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(src_dir)
    ort_type, chosen = ORT_MODEL_TYPES[config.model_type], LEVELS[level]
    num_heads, hidden_size = attention_shape(config)
    options = FusionOptions(ort_type)
    options.enable_embed_layer_norm = fuse_embeddings and config.model_type not in POSITIONS_FROM_PADDING
    options.enable_gelu_approximation = chosen.gelu_approximation
    out_dir.mkdir(parents=True, exist_ok=True)
    with quiet():
        optimized = optimize_model(str(src_dir / MODEL_FILE), ort_type, num_heads=num_heads, hidden_size=hidden_size,
                                   optimization_options=options, opt_level=chosen.ort_level, use_gpu=False)
    optimized.save_model_to_file(str(out_dir / MODEL_FILE))
    return out_dir / MODEL_FILE


def attention_shape(config: Any) -> tuple[int, int]:
    """(heads, heads x head size) of every layer's attention, what the fusions check each layer against.

    transformers 5 reshapes to (-1, head size), so ORT cannot read the head count from the graph and takes these.
    A pruned model records its heads per layer in `config.edge_compress["heads"]` (compress.prune) and keeps the
    original head size; when its layers kept different counts no one value fits, and (0, 0) leaves attention unfused
    (slower, still exact) rather than fusing a layer with the wrong head count.
    """
    head_size = config.hidden_size // config.num_attention_heads
    heads = set((getattr(config, "edge_compress", None) or {}).get("heads") or [config.num_attention_heads])
    if len(heads) != 1:
        return 0, 0
    count = heads.pop()
    return count, count * head_size
