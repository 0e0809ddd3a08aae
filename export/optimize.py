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
    source: str | Any = str(src_dir / MODEL_FILE)
    if num_heads == 0:  # layers kept different head counts: write each layer's into its own graph
        import onnx

        source = onnx.load(source)
        pin_head_counts(source, config.hidden_size // config.num_attention_heads)
    options = FusionOptions(ort_type)
    options.enable_embed_layer_norm = fuse_embeddings and config.model_type not in POSITIONS_FROM_PADDING
    options.enable_gelu_approximation = chosen.gelu_approximation
    out_dir.mkdir(parents=True, exist_ok=True)
    with quiet():
        optimized = optimize_model(source, ort_type, num_heads=num_heads, hidden_size=hidden_size,
                                   optimization_options=options, opt_level=chosen.ort_level, use_gpu=False)
    optimized.save_model_to_file(str(out_dir / MODEL_FILE))
    return out_dir / MODEL_FILE


def attention_shape(config: Any) -> tuple[int, int]:
    """(heads, heads x head size) of every layer's attention, what the fusions check each layer against.

    transformers 5 reshapes to (-1, head size), so ORT cannot read the head count from the graph and takes these.
    A pruned model records its heads per layer in `config.edge_compress["heads"]` (compress.prune) and keeps the
    original head size; when its layers kept different counts no one value fits: (0, 0) tells the fusions to read
    each layer's count from its graph, which `pin_head_counts` writes there first.
    """
    head_size = config.hidden_size // config.num_attention_heads
    heads = set((getattr(config, "edge_compress", None) or {}).get("heads") or [config.num_attention_heads])
    if len(heads) != 1:
        return 0, 0
    count = heads.pop()
    return count, count * head_size


def pin_head_counts(model: Any, head_size: int) -> int:
    """Write each attention layer's head count into its graph, in place; returns how many reshapes it pinned.

    transformers 5 splits heads with `view(batch, seq, -1, head_size)`, so the exported Reshape's shape holds -1
    where ORT's attention fusion reads the head count (`FusionAttention.get_num_heads_and_hidden_size`).  With
    uneven heads per layer no single `num_heads` is right, so this replaces the -1 by the layer's own count,
    width / head size, with the width read off ONNX shape inference.  The Reshape computes the same thing.
    The graph walking is ORT's own `OnnxModel` (what its fusions use); the rewrite itself is hand-written: neither
    ORT's optimizer nor onnxscript's rewriter has a pass that does it.
    """
    import numpy as np
    import onnx
    from onnx import numpy_helper
    from onnxruntime.transformers.onnx_model import OnnxModel

    widths = {v.name: v.type.tensor_type.shape.dim[-1].dim_value for v in onnx.shape_inference.infer_shapes(model).graph.value_info
              if v.type.tensor_type.shape.dim and v.type.tensor_type.shape.dim[-1].HasField("dim_value")}
    graph = OnnxModel(model)
    producers, readers = graph.output_name_to_node(), graph.input_name_to_nodes()

    def is_value(name: str, value: int) -> bool:
        array = graph.get_constant_value(name)
        return array is not None and array.size == 1 and int(array.reshape(-1)[0]) == value

    def pinned_constant(stem: str, values: list[int]) -> str:
        graph.add_initializer(numpy_helper.from_array(np.array(values, dtype=np.int64), f"{stem}/pinned_heads"))
        return f"{stem}/pinned_heads"

    pinned = 0
    for node in graph.get_nodes_by_op_type("Reshape"):
        width = widths.get(node.input[0], 0)
        if width <= 0 or width % head_size:
            continue
        shape, concat = graph.get_constant_value(node.input[1]), producers.get(node.input[1])
        if shape is not None and shape.shape == (4,) and shape[2] == -1 and shape[3] == head_size:
            node.input[1] = pinned_constant(node.name or node.output[0], [*shape[:2], width // head_size, head_size])
        elif (concat is not None and concat.op_type == "Concat" and len(concat.input) == 4
              and len(readers[concat.output[0]]) == 1 and is_value(concat.input[2], -1) and is_value(concat.input[3], head_size)):
            concat.input[2] = pinned_constant(concat.name or concat.output[0], [width // head_size])
        else:
            continue
        pinned += 1
    graph.prune_graph(allow_remove_graph_inputs=False)  # the -1 constants the pins replaced (ORT warns of unused ones)
    return pinned
