"""PyTorch causal LM -> one ONNX graph with a KV cache, through transformers' own exporter (`transformers.exporters`).

One graph serves prefill and decode: it takes `input_ids`, `attention_mask`, `position_ids` and one key and one value
tensor per layer (`past_key_values.layers.N.keys` / `.values`, shaped [batch, kv_heads, past, head_dim]) and returns
`logits` and the updated cache (`cache.layers.N.keys` / `.values`).  A prefill feeds zero-length past tensors.  The
sample traced has batch 2, a past of 4 and 3 new tokens, so batch, past and new lengths all stay dynamic (torch.export
pins a size-1 or size-0 axis).  `position_ids` is an input so left-padded batches get the positions `generate()` gives.

After the export, each node is named after the module that produced it (`/model/layers.0/mlp/down_proj/MatMul`, the
TorchScript exporter's convention), read from the node's `pkg.torch.onnx.name_scopes` metadata: quantizer patterns
(`lm.exclude`, `lm.int4_keep_8bit`), the size breakdown and the report name MatMuls that way.  ONNX Runtime fusions
(`FUSIONS`, per architecture) then run; a fusion that packs sibling MatMuls (q/k/v, gate/up) into one names the packed
node after every MatMul it replaced, joined by `PACKED_SEPARATOR`, so a pattern naming one of them still finds it.
"""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import torch
from edge_compress.export.onnx_export import ExportError, conv1d_as_linear
from edge_compress.export.quiet import quiet

# ORT fusions per model_type (`OnnxConfig.ort_fusions`): the provider the graph is fused for, or None for none.
# Checked against PyTorch in tests/test_causal_lm.py, test_genai.py and test_gemma4.py; architectures not listed get
# DEFAULT_FUSIONS.  Fused (rotary embeddings, skip (RMS)norms, packed q/k/v and gate/up MatMuls), the graph runs as
# one kernel what was several: on Gemma 3 270M int8 decode steps run 1.7-1.8x faster fused than unfused, fp32 ties
# (bench/bench_fusions.py, bench/RESULTS.md).  GPT-2 stays unfused: fused, its tied LM head becomes a FusedMatMul reading the
# embedding table transposed, which the quantizers' shared-table rewrite (export/tied.py) does not match, so the head
# would stay float; its only other gain would be SkipLayerNormalization.
DEFAULT_FUSIONS: str | None = "cpu"
FUSIONS: dict[str, str | None] = {
    "gpt2": None,
    **dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text", "gemma4_text"), "cpu"),
}
PACKED_SEPARATOR = "|"
_SAMPLE_BATCH, _SAMPLE_PAST, _SAMPLE_NEW = 2, 4, 3


class NoKVCacheError(ExportError):
    """The architecture's cache is not one key and one value tensor per layer (or there is none)."""


def export_causal_lm_graph(model: torch.nn.Module, folder: Path, opset: int | None = None) -> Path:
    """Export `model` with its KV cache to `folder` (model.onnx, model.onnx.data, export.json, config.json).

    Raises NoKVCacheError when the architecture has no plain per-layer KV cache, ExportError when the exporter fails."""
    from transformers.exporters import OnnxConfig, OnnxExporter

    model = model.eval()
    folder.mkdir(parents=True, exist_ok=True)
    model_type = getattr(model.config, "model_type", type(model).__name__)
    fusions = FUSIONS.get(model_type, DEFAULT_FUSIONS)
    with conv1d_as_linear(model):
        inputs = sample_inputs(model)
        try:
            with quiet(), torch.no_grad():
                exported = OnnxExporter().export(model, inputs, config=OnnxConfig(
                    dynamic_shapes=_dynamic_shapes(inputs), opset_version=opset, ort_fusions=None))
                program = exported.program
                bake_cache_settings(program, inputs)
                name_nodes(program)
                if fusions:
                    _fuse(program, fusions)
        except Exception as err:  # the exporter raises many types; name the model and the first line
            text = str(err).strip().splitlines()
            raise ExportError(f"ONNX export of the {model_type} model ({type(model).__name__}) with its KV cache failed: "
                              f"{type(err).__name__}: {text[0] if text else ''}") from err
    exported.save_pretrained(folder)
    return folder / "model.onnx"


def sample_inputs(model: torch.nn.Module) -> dict[str, Any]:
    """Traced inputs: a real cache of `_SAMPLE_PAST` tokens from the model itself, then `_SAMPLE_NEW` new tokens."""
    vocab = int(model.config.get_text_config().vocab_size)
    generator = torch.Generator().manual_seed(0)
    total = _SAMPLE_PAST + _SAMPLE_NEW
    ids = torch.randint(0, vocab, (_SAMPLE_BATCH, total), generator=generator)
    with torch.no_grad():
        cache = model(input_ids=ids[:, :_SAMPLE_PAST], use_cache=True).past_key_values
    check_plain_cache(model, cache)
    positions = torch.arange(_SAMPLE_PAST, total).expand(_SAMPLE_BATCH, -1)
    return {"input_ids": ids[:, _SAMPLE_PAST:], "attention_mask": torch.ones(_SAMPLE_BATCH, total, dtype=torch.long),
            "position_ids": positions.contiguous(), "past_key_values": cache, "use_cache": True}


def check_plain_cache(model: torch.nn.Module, cache: Any) -> None:
    """ExportError unless `cache` is one key and one value tensor per layer, [batch, kv_heads, length, head_dim]."""
    model_type = getattr(model.config, "model_type", type(model).__name__)
    layers = getattr(cache, "layers", None)
    if cache is None or not layers:
        raise NoKVCacheError(f"the {model_type} model returns no KV cache (past_key_values is {type(cache).__name__})")
    for index, layer in enumerate(layers):
        keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
        extra = [name for name, value in vars(layer).items()  # state beside keys/values (a 0-d tensor is a setting)
                 if isinstance(value, torch.Tensor) and value.dim() > 0 and name not in ("keys", "values")]
        if not isinstance(keys, torch.Tensor) or not isinstance(values, torch.Tensor) or keys.dim() != 4 or extra:
            raise NoKVCacheError(f"the {model_type} model's cache layer {index} ({type(layer).__name__}) is not a plain "
                              "key/value cache (recurrent or convolution state), which one KV-cache graph cannot carry")


def _dynamic_shapes(inputs: dict[str, Any]) -> Any:
    """Batch and lengths dynamic, heads and head size fixed: faster to export than every axis `Dim.AUTO`."""
    from transformers.exporters.exporter_dynamo import get_auto_dynamic_shapes

    auto = torch.export.Dim.AUTO

    def narrow(spec: Any) -> Any:
        if isinstance(spec, dict) and all(isinstance(k, int) for k in spec):
            return {0: auto, 2: auto} if len(spec) == 4 else {axis: auto for axis in spec}
        if isinstance(spec, dict):
            return {key: narrow(value) for key, value in spec.items()}
        if isinstance(spec, (list, tuple)):
            return type(spec)(narrow(value) for value in spec)
        return spec

    return narrow(get_auto_dynamic_shapes({k: v for k, v in inputs.items() if k != "use_cache"}))


def bake_cache_settings(program: Any, inputs: dict[str, Any]) -> None:
    """Turn 0-d cache leaves (a sliding-window layer's window size, Gemma 4's) from graph inputs into constants.

    They are settings the traced cache carries, not state: a caller feeding the cache back by name would otherwise
    have to know each one's value before the first step."""
    import onnx_ir as ir
    from transformers.exporters.utils import get_leaf_tensors

    leaves = get_leaf_tensors(inputs)
    for value in list(program.graph.inputs):
        leaf = leaves.get(value.name)
        if value.name.startswith("past_key_values.") and leaf is not None and leaf.dim() == 0:
            program.graph.inputs.remove(value)
            value.const_value = ir.tensor(leaf.numpy())
            program.graph.register_initializer(value)


# --- node names ---------------------------------------------------------------------------------------------------

def module_node_name(scopes: list[str], op_type: str) -> str | None:
    """`/model/layers.0/mlp/down_proj/MatMul` from name scopes ['', 'model', ..., 'model.layers.0.mlp.down_proj', op]."""
    modules = [s for s in scopes[:-1] if s]
    if not modules:
        return None
    parts: list[str] = []
    for part in modules[-1].split("."):
        if part.isdigit() and parts:
            parts[-1] = f"{parts[-1]}.{part}"
        else:
            parts.append(part)
    return "/" + "/".join(parts) + "/" + op_type


def name_nodes(program: Any) -> None:
    """Name every node of an onnx_ir model after its module (unique names: a suffix _1, _2 ... on repeats).

    The exporter's per-node metadata (stack traces, FX nodes, scopes) is dropped once read: it is most of a small
    graph's bytes and nothing reads it at run time."""
    seen: dict[str, int] = {}
    for node in program.graph.all_nodes():
        raw = node.metadata_props.get("pkg.torch.onnx.name_scopes")
        node.metadata_props.clear()
        name = module_node_name(ast.literal_eval(raw), node.op_type) if raw else None
        if name is None:
            continue
        count = seen.get(name, 0)
        seen[name] = count + 1
        node.name = name if count == 0 else f"{name}_{count}"


def _fuse(program: Any, provider: str) -> None:
    """ONNX Runtime fusions for `provider`; packed MatMuls named after the MatMuls they replaced."""
    from transformers.exporters.onnxruntime_fusions import fuse_for_onnxruntime

    before = _weight_matmuls(program)
    fuse_for_onnxruntime(program, provider)
    by_column = {}
    for name, weight in before.items():
        by_column.setdefault((weight.shape[0], weight[:, 0].tobytes()), []).append((name, weight))
    for node in program.graph.all_nodes():
        weight = _constant_weight(node)
        if weight is None or node.name in before:
            continue
        names, offset = [], 0
        while offset < weight.shape[1]:
            found = next((n for n, w in by_column.get((weight.shape[0], weight[:, offset].tobytes()), [])
                          if offset + w.shape[1] <= weight.shape[1] and np.array_equal(weight[:, offset:offset + w.shape[1]], w)),
                         None)
            if found is None:
                break
            names.append(found)
            offset += before[found].shape[1]
        if names and offset == weight.shape[1]:
            node.name = PACKED_SEPARATOR.join(names)


def _weight_matmuls(program: Any) -> dict[str, np.ndarray]:
    return {node.name: weight for node in program.graph.all_nodes() if (weight := _constant_weight(node)) is not None}


def _constant_weight(node: Any) -> np.ndarray | None:
    if node.op_type != "MatMul" or len(node.inputs) < 2 or node.inputs[1] is None or node.inputs[1].const_value is None:
        return None
    weight = node.inputs[1].const_value.numpy()
    return weight if weight.ndim == 2 else None


def unpack_matmuls(model: Any, split: Any) -> int:
    """Undo the packing for each packed MatMul (an onnx ModelProto's) for which `split(part_names)` is true.

    A packed MatMul feeds one Split of its output along the last axis (the fusion's own); each part becomes its own
    MatMul, named as before packing, writing that Split's output: a weight-only quantizer can then give the parts
    different bits (int4 with v_proj kept at 8).  Returns how many were unpacked."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    readers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            readers.setdefault(name, []).append(node)
    replaced: dict[str, list[Any]] = {}
    dropped: set[str] = set()
    for node in graph.node:
        parts = node.name.split(PACKED_SEPARATOR)
        users = readers.get(node.output[0], []) if node.op_type == "MatMul" else []
        if len(parts) < 2 or node.input[1] not in inits or len(users) != 1 or users[0].op_type != "Split" or not split(parts):
            continue
        cut = users[0]
        sizes = numpy_helper.to_array(inits[cut.input[1]]) if len(cut.input) > 1 and cut.input[1] in inits else None
        axis = next((helper.get_attribute_value(a) for a in cut.attribute if a.name == "axis"), 0)
        weight = numpy_helper.to_array(inits[node.input[1]])
        if sizes is None or axis not in (-1, weight.ndim - 1) or len(sizes) != len(parts) or len(cut.output) != len(parts):
            continue
        nodes, offset = [], 0
        for part, size, output in zip(parts, sizes, cut.output):
            weight_name = f"{node.input[1]}_{len(nodes)}"
            graph.initializer.append(numpy_helper.from_array(np.ascontiguousarray(weight[:, offset:offset + size]), weight_name))
            nodes.append(helper.make_node("MatMul", [node.input[0], weight_name], [output], name=part))
            offset += int(size)
        replaced[node.name], dropped = nodes, dropped | {cut.name}
    if not replaced:
        return 0
    old = list(graph.node)
    del graph.node[:]
    for node in old:
        if node.name not in dropped:
            graph.node.extend(replaced.get(node.name, [node]))
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)
    return len(replaced)
