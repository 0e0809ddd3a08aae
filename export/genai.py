"""`genai_config.json` for onnxruntime-genai, so `onnxruntime_genai.Model(folder)` generates with our decoder export.

onnxruntime-genai's own model builder re-exports a checkpoint into its own graph (GroupQueryAttention, shared KV
buffer). We want it to run the graph this project exported, validated and quantized, so the config is written here
from that graph instead: genai's decoder-only runtime feeds any graph that takes ``input_ids`` (plus optional
``attention_mask`` / ``position_ids``) and one past key and one past value per layer shaped (batch, kv_heads,
past_len, head_size), and returns ``logits`` plus the presents, as long as the config names those tensors. Names
are read from the graph (with the layer index turned into ``%d``: ``past_key_values.layers.%d.keys`` in and
``cache.layers.%d.keys`` out for transformers' exporter), not assumed, so exporters that name them differently work
too; sizes come from the graph's cache shapes and the Hugging Face config. Layouts genai cannot
feed raise `GenaiError` naming the mismatch. Hand-written (no library writes this config for a given graph: the
builder only does it for graphs it built itself).

The cache is not shared between past and present (``past_present_share_buffer: false``): the exported graph
concatenates past and new keys, which is what genai does for graphs without GroupQueryAttention.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx

CONFIG_FILE = "genai_config.json"

# genai model types (its ModelType::IsLLM list) that mean "decoder-only, separate past key/value per layer", checked
# against PyTorch in tests/test_genai.py. Every other architecture is written as genai's generic "decoder" type;
# "gpt2" is never used for ours: genai's gpt2 type expects the legacy layout of one stacked key/value tensor per layer.
GENAI_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text"})
_INPUTS = ("input_ids", "attention_mask", "position_ids")


class GenaiError(ValueError):
    """The graph or config does not fit onnxruntime-genai's conventions; ``fix`` says what to change."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(f"{message}\n  fix: {fix}")
        self.message, self.fix = message, fix


@dataclass(frozen=True)
class _Cache:
    """One per-layer tensor family, e.g. past_key_values.%d.key, and the shapes of its layers."""

    pattern: str
    shapes: list[list[int | str]]


def _shape(value: onnx.ValueInfoProto) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value.type.tensor_type.shape.dim]


def _families(values: list[onnx.ValueInfoProto], what: str) -> dict[str, _Cache]:
    """Group per-layer tensors by name pattern (the one number in the name is the layer)."""
    found: dict[str, dict[int, list[int | str]]] = {}
    for value in values:
        match = re.fullmatch(r"(\D*)(\d+)(\D*)", value.name)
        if match is None:
            raise GenaiError(f"the graph's {what} {value.name!r} is neither {' / '.join(_INPUTS)}, logits, nor a "
                             "per-layer cache tensor, and onnxruntime-genai feeds only those",
                             "export the decoder without extra inputs (export.lm_export)")
        found.setdefault(f"{match[1]}%d{match[3]}", {})[int(match[2])] = _shape(value)
    families = {}
    for pattern, layers in found.items():
        if sorted(layers) != list(range(len(layers))):
            raise GenaiError(f"the {what} {pattern} cover layers {sorted(layers)}, not 0..{len(layers) - 1}",
                             "export every layer's cache tensors")
        families[pattern] = _Cache(pattern, [layers[i] for i in range(len(layers))])
    return families


def _key_value(families: dict[str, _Cache], what: str) -> tuple[_Cache, _Cache]:
    """The key and the value family: the two patterns differ in a part starting with k / v."""
    if len(families) != 2:
        names = sorted(families) or ["none"]
        layout = ("one tensor per layer holding key and value together" if len(families) == 1
                  else f"{len(families)} per-layer tensor families")
        raise GenaiError(f"the graph's {what} are {', '.join(names)}: {layout}; onnxruntime-genai's decoder needs "
                         "exactly one key and one value tensor per layer",
                         "export with past key/values as separate tensors (export.lm_export)")
    a, b = sorted(families)
    start = len(_common_prefix(a, b))
    end = len(_common_prefix(a[::-1], b[::-1]))
    parts = {a[start:len(a) - end].lower()[:1]: families[a], b[start:len(b) - end].lower()[:1]: families[b]}
    if set(parts) != {"k", "v"}:
        raise GenaiError(f"cannot tell key from value in the graph's {what} {a} and {b}",
                         "name the cache tensors with key / value (e.g. past_key_values.layers.0.keys)")
    return parts["k"], parts["v"]


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _cache_sizes(key: _Cache, value: _Cache, what: str) -> tuple[int, int]:
    """(kv_heads, head_size), the same for every layer and for keys and values, or `GenaiError`."""
    sizes = set()
    for layer, (k, v) in enumerate(zip(key.shapes, value.shapes)):
        if len(k) != 4 or not isinstance(k[1], int) or not isinstance(k[3], int) or isinstance(k[2], int):
            raise GenaiError(f"the {what} cache of layer {layer} has shape {k}; onnxruntime-genai needs "
                             "(batch, kv_heads, sequence, head_size) with fixed heads and head size",
                             "export the cache in the BNSH layout transformers uses")
        if k != v:
            raise GenaiError(f"layer {layer}'s {what} key {k} and value {v} differ in shape; onnxruntime-genai "
                             "allocates both alike", "use an architecture with equal key and value head sizes")
        sizes.add((k[1], k[3]))
    if len(sizes) != 1:
        heads = [k[1] for k in key.shapes]
        raise GenaiError(f"the KV heads per layer differ ({heads}); genai_config.json holds one num_key_value_heads "
                         "for all layers",
                         "prune with uniform_heads=True (compress.prune.PruneConfig) so every layer keeps as many KV heads")
    return sizes.pop()


def _read_graph(path: Path) -> dict[str, Any]:
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {t.name for t in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    names = {i.name for i in inputs}
    if "input_ids" not in names:
        raise GenaiError(f"{path.name} has no input_ids input (inputs: {sorted(names)}); genai_config here maps token ids",
                         "export the decoder with input_ids (not inputs_embeds)")
    past_key, past_value = _key_value(_families([i for i in inputs if i.name not in _INPUTS], "inputs"), "inputs")
    # Outputs that are constants (a sliding-window layer's window size, which transformers' cache carries) are not
    # state genai feeds back: it only reads the outputs its config names.
    outputs = [o for o in graph.output if o.name not in initializers]
    logits = [o for o in outputs if not re.search(r"\d", o.name)]  # the one output not indexed by layer
    if len(logits) != 1:
        raise GenaiError(f"{path.name} should have one output besides the per-layer cache (the logits), but has "
                         f"{[o.name for o in logits]}", "export the decoder with its LM head and nothing else")
    present_key, present_value = _key_value(_families([o for o in outputs if o is not logits[0]], "outputs"),
                                            "outputs")
    layers = len(past_key.shapes)
    if len(present_key.shapes) != layers:
        raise GenaiError(f"the graph takes {layers} past layers but returns {len(present_key.shapes)} present ones",
                         "export a decoder whose cache inputs and outputs match")
    kv_heads, head_size = _cache_sizes(past_key, past_value, "past")
    if _cache_sizes(present_key, present_value, "present") != (kv_heads, head_size):
        raise GenaiError("the present cache's heads or head size differ from the past cache's",
                         "export a decoder whose cache inputs and outputs match")
    vocab = _shape(logits[0])[-1]
    return {
        "inputs": {**{name: name for name in _INPUTS if name in names},
                   "past_key_names": past_key.pattern, "past_value_names": past_value.pattern},
        "outputs": {"logits": logits[0].name, "present_key_names": present_key.pattern,
                    "present_value_names": present_value.pattern},
        "num_hidden_layers": layers, "num_key_value_heads": kv_heads, "head_size": head_size,
        "vocab_size": vocab if isinstance(vocab, int) else None,
    }


def _first(config: dict[str, Any], *names: str) -> Any:
    return next((config[n] for n in names if config.get(n) is not None), None)


def genai_config(onnx_path: Path, hf_config: dict[str, Any], generation_config: dict[str, Any] | None = None,
                 context_length: int | None = None, filename: str | None = None) -> dict[str, Any]:
    """The genai_config.json content for `onnx_path`, from its graph and the model's config.json (as a dict).

    `generation_config` (generation_config.json as a dict) supplies special tokens and search defaults;
    `context_length` overrides the config's maximum positions; `filename` is the file genai opens (default
    `onnx_path`'s name), e.g. the ORT-format copy of the same graph in a mobile package (genai loads .ort files).
    """
    onnx_path = Path(onnx_path)
    graph = _read_graph(onnx_path)
    text = hf_config.get("text_config") or hf_config
    generation = generation_config or {}
    heads = _first(text, "num_attention_heads", "n_head")
    hidden = _first(text, "hidden_size", "n_embd")
    context = context_length or _first(text, "max_position_embeddings", "n_positions", "n_ctx")
    if heads is None or hidden is None or context is None:
        raise GenaiError("the config lacks the number of attention heads, hidden size or maximum positions",
                         "pass the model's config.json as a dict (and context_length= if it has no max_position_embeddings)")
    if heads % graph["num_key_value_heads"]:
        raise GenaiError(f"{heads} attention heads are not a multiple of the graph's {graph['num_key_value_heads']} KV heads",
                         "pass the config.json saved with the exported model")
    tokens = {name: _first(generation, name) if _first(generation, name) is not None else _first(hf_config, name)
              for name in ("bos_token_id", "eos_token_id", "pad_token_id")}
    eos = tokens["eos_token_id"]
    if eos is None:
        raise GenaiError("neither generation_config nor config names an eos_token_id, so generation could not stop",
                         "set eos_token_id in the model's config.json or generation_config.json")
    if tokens["pad_token_id"] is None:
        tokens["pad_token_id"] = eos[0] if isinstance(eos, list) else eos
    model_type = text.get("model_type") or hf_config.get("model_type")
    return {
        "model": {
            **tokens,
            "context_length": int(context),
            "decoder": {
                "session_options": {"log_id": "onnxruntime-genai", "provider_options": []},
                "filename": filename or onnx_path.name,
                "head_size": graph["head_size"],
                "hidden_size": int(hidden),
                "inputs": graph["inputs"],
                "outputs": graph["outputs"],
                "num_attention_heads": int(heads),
                "num_hidden_layers": graph["num_hidden_layers"],
                "num_key_value_heads": graph["num_key_value_heads"],
            },
            "type": model_type if model_type in GENAI_TYPES else "decoder",
            "vocab_size": graph["vocab_size"] or int(_first(text, "vocab_size")),
        },
        "search": {
            "do_sample": bool(generation.get("do_sample", False)),
            "early_stopping": True,
            "length_penalty": 1.0,
            "max_length": int(context),
            "min_length": 0,
            "no_repeat_ngram_size": 0,
            "num_beams": 1,
            "num_return_sequences": 1,
            "past_present_share_buffer": False,
            "repetition_penalty": float(generation.get("repetition_penalty", 1.0)),
            "temperature": float(generation.get("temperature", 1.0)),
            "top_k": int(generation.get("top_k", 50)),
            "top_p": float(generation.get("top_p", 1.0)),
        },
    }


def write_genai_config(onnx_path: Path, hf_config: dict[str, Any], generation_config: dict[str, Any] | None = None,
                       context_length: int | None = None, folder: Path | None = None, filename: str | None = None) -> Path:
    """Write genai_config.json into `folder` (default: next to `onnx_path`); `onnxruntime_genai.Model(folder)` then
    loads it. `filename` names the model file in `folder` when it is not `onnx_path` itself (an .ort copy).

    The folder should also hold the tokenizer files (tokenizer.json, tokenizer_config.json) for
    `onnxruntime_genai.Tokenizer`; the decoder export writes them.
    """
    onnx_path = Path(onnx_path)
    config = genai_config(onnx_path, hf_config, generation_config, context_length, filename)
    path = (Path(folder) if folder is not None else onnx_path.parent) / CONFIG_FILE
    path.write_text(json.dumps(config, indent=2))
    return path
