"""PyTorch encoder-decoder (Marian, BART, T5, ...) -> two ONNX graphs that plain ONNX Runtime generates with.

    encoder.onnx   input_ids, attention_mask -> encoder_hidden_states, cross.{i}.key, cross.{i}.value
    decoder.onnx   decoder_input_ids, encoder_attention_mask, past.{i}.key/value, cross.{i}.key/value
                   -> logits, present.{i}.key/value

Why this layout: the cross-attention keys and values depend on the source only, so the encoder graph
computes them once per sentence (it traces one decoder call on a fresh cache and keeps only what the
cache holds for cross-attention; the tracer's dead-code pass drops the rest of that call).  Every decode
step, the first one included (an empty self-attention cache, past length 0), is the same decoder graph:
one file per component to quantize, time and ship, no merged If-graph (the layout optimum#1687 and
onnxruntime#10322 report breaking under int8), no weights stored twice.

Why torch.onnx's TorchScript path and not transformers' dynamo `OnnxExporter`: dynamo specializes a
dimension seen at size 0 or 1, so one decoder graph could not serve the empty first-step cache and the
later ones; the TorchScript trace keeps the cache length symbolic (the rest of the project's single-graph
exports use the same path, export/onnx_export.py).

Each folder carries export.json (export/hf_manifest.py's format, one component per graph), so
`transformers.exporters.ExportedModel.from_pretrained(folder)` loads it; its runners take and return
dicts of the tensors named above.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from edge_compress.export.hf_manifest import DATA_SUFFIX, MANIFEST_FILE, SCHEMA_VERSION, _versions
from edge_compress.export.onnx_export import eager_attention
from edge_compress.export.quiet import quiet
from edge_compress.export.tied import dedupe_tied
from torch import nn

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
COMPONENTS = {"encoder": ENCODER_FILE, "decoder": DECODER_FILE}
DEFAULT_OPSET = 17
TRACE_PAST = 3      # self-attention cache length the decoder is traced at (any value > 1: no axis may be traced at 1)


class Seq2SeqExportError(RuntimeError):
    """The export failed; the message names the model and the graph."""


@dataclass(frozen=True)
class Shapes:
    """The cache geometry of one decoder: what the graphs' cache inputs and outputs look like."""
    layers: int
    heads: int
    head_dim: int


def shapes(model: nn.Module) -> Shapes:
    """Read from one cross-attention cache entry the model itself fills, not from config names (d_kv, d_model, ...)."""
    with torch.no_grad():
        cross = EncoderGraph(model).eval()(*_sample_source(model))[1:]
    key = cross[0]
    return Shapes(len(cross) // 2, int(key.shape[1]), int(key.shape[3]))


def cache_names(layers: int, prefix: str) -> list[str]:
    return [f"{prefix}.{i}.{kind}" for i in range(layers) for kind in ("key", "value")]


class EncoderGraph(nn.Module):
    """Source -> encoder states and every decoder layer's cross-attention keys/values (what the cache keeps)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        hidden = self.model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        start = torch.zeros_like(input_ids[:, :1])  # any token: only the cross-attention entries are kept
        self.model(encoder_outputs=(hidden,), attention_mask=attention_mask, decoder_input_ids=start, cache=cache,
                   use_cache=True)
        cross = cache.cross_attention_cache
        return (hidden, *[t for layer in cross.layers for t in (layer.keys, layer.values)])


class DecoderGraph(nn.Module):
    """One decode step on the self-attention cache (length 0 at the first step) and the encoder's cross cache."""

    def __init__(self, model: nn.Module, layers: int) -> None:
        super().__init__()
        self.model, self.layers = model, layers

    def forward(self, decoder_input_ids: torch.Tensor, encoder_attention_mask: torch.Tensor,
                *caches: torch.Tensor) -> tuple[torch.Tensor, ...]:
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        n = 2 * self.layers
        past, cross = caches[:n], caches[n:]
        self_cache, cross_cache = DynamicCache(), DynamicCache()
        for i in range(self.layers):
            self_cache.update(past[2 * i], past[2 * i + 1], i)
            cross_cache.update(cross[2 * i], cross[2 * i + 1], i)
        cache = EncoderDecoderCache(self_cache, cross_cache)
        for i in range(self.layers):
            cache.is_updated[i] = True  # reuse the cross entries: no k/v projection of the encoder states per step
        key = cross[0]
        # The decoder reads the encoder states' shape only (batch, source length) once the cross cache is filled.
        hidden = key.transpose(1, 2).reshape(key.shape[0], key.shape[2], -1)
        out = self.model(encoder_outputs=(hidden,), attention_mask=encoder_attention_mask, decoder_input_ids=decoder_input_ids,
                         cache=cache, use_cache=True)
        present = out.cache.self_attention_cache
        return (out.logits, *[t for layer in present.layers for t in (layer.keys, layer.values)])


def export_seq2seq(model: nn.Module, folder: Path, opset: int | None = None) -> dict[str, Path]:
    """Export `model` into folder/encoder.onnx + folder/decoder.onnx (weights in *.onnx.data) and export.json.

    Returns {component: graph path}.  The graphs are traced on a batch of two sources of different lengths
    (no axis traced at 1) and checked with onnx.checker; parity with PyTorch on real sentences is the caller's."""
    folder.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    opset = opset or DEFAULT_OPSET
    ids, mask = _sample_source(model)
    geometry = shapes(model)
    encoder = EncoderGraph(model).eval()  # torch.onnx restores each wrapper's mode, recursively: eval, so the model stays eval
    decoder = DecoderGraph(model, geometry.layers).eval()
    cross_names = cache_names(geometry.layers, "cross")
    past_names, present_names = cache_names(geometry.layers, "past"), cache_names(geometry.layers, "present")
    batch, src, past, total = "batch_size", "source_length", "past_length", "total_length"
    with torch.no_grad(), eager_attention(model):
        enc_out = encoder(ids, mask)
        cross = enc_out[1:]
        dec_ids = torch.full((ids.shape[0], 1), _start_token(model), dtype=torch.long)
        past_tensors = tuple(torch.randn(ids.shape[0], geometry.heads, TRACE_PAST, geometry.head_dim)
                             for _ in range(2 * geometry.layers))
        dec_out = decoder(dec_ids, mask, *past_tensors, *cross)
        enc_axes = {"input_ids": {0: batch, 1: src}, "attention_mask": {0: batch, 1: src},
                    "encoder_hidden_states": {0: batch, 1: src},
                    **{name: {0: batch, 2: src} for name in cross_names}}
        dec_axes = {"decoder_input_ids": {0: batch}, "encoder_attention_mask": {0: batch, 1: src}, "logits": {0: batch},
                    **{name: {0: batch, 2: past} for name in past_names}, **{name: {0: batch, 2: src} for name in cross_names},
                    **{name: {0: batch, 2: total} for name in present_names}}
        paths = {}
        for component, module, args, inputs, outputs, axes in (
                ("encoder", encoder, (ids, mask), ["input_ids", "attention_mask"],
                 ["encoder_hidden_states", *cross_names], enc_axes),
                ("decoder", decoder, (dec_ids, mask, *past_tensors, *cross),
                 ["decoder_input_ids", "encoder_attention_mask", *past_names, *cross_names], ["logits", *present_names],
                 dec_axes)):
            path = folder / COMPONENTS[component]
            try:
                with quiet():
                    torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs,
                                      dynamic_axes=axes, opset_version=opset, dynamo=False, do_constant_folding=True)
                onnx.checker.check_model(str(path))
            except Exception as err:  # torch.onnx raises many types; name the graph that failed
                first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise Seq2SeqExportError(f"ONNX export of the {model.config.model_type} {component} "
                                         f"({type(model).__name__}) failed: {type(err).__name__}: {first}") from err
            paths[component] = path
    decoder_graph = onnx.load(str(paths["decoder"]))
    if dedupe_tied(decoder_graph):  # the LM head tied to the embedding: one table on disk, not the table and its transpose
        onnx.save_model(decoder_graph, str(paths["decoder"]))
    samples = {"encoder": ({"input_ids": ids, "attention_mask": mask},
                           dict(zip(["encoder_hidden_states", *cross_names], enc_out))),
               "decoder": ({"decoder_input_ids": dec_ids, "encoder_attention_mask": mask,
                            **dict(zip(past_names, past_tensors)), **dict(zip(cross_names, cross))},
                           dict(zip(["logits", *present_names], dec_out)))}
    for path in paths.values():
        externalize(path)
    write_manifest(folder, model, samples)
    return paths


def externalize(path: Path) -> None:
    """Weights of one graph into `<graph>.data` (transformers' convention, so ExportedModel and ORT read them).

    Tensors under 1 KiB stay in the graph: ONNX Runtime's shape inference reads constant shape operands
    (Unsqueeze axes, Reshape shapes) of a QDQ graph inline only, and refuses the model otherwise."""
    model = onnx.load(str(path))
    data = path.with_name(path.name + DATA_SUFFIX)
    staged = path.with_name(path.name + ".tmp")
    onnx.save_model(model, str(staged), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name, size_threshold=1024)
    staged.replace(path)


def write_manifest(folder: Path, model: nn.Module, samples: dict[str, tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]]
                   ) -> None:
    """export.json with one component per graph: the traced inputs and the dict of outputs each returns."""
    from transformers.exporters.metadata import ExportMetadata, _describe_traced_kwarg, record_output_structure

    components = {}
    for component, (inputs, outputs) in samples.items():
        _, in_spec = torch.utils._pytree.tree_flatten(((), dict(inputs)))
        metadata = ExportMetadata(architecture=type(model).__name__, packages=_versions(), export_dtype="float32",
                                  export_device="cpu",
                                  kwargs={name: _describe_traced_kwarg(value) for name, value in inputs.items()},
                                  in_spec=torch.utils._pytree.treespec_dumps(in_spec))
        record_output_structure(metadata, dict(outputs))
        components[component] = {"file": COMPONENTS[component], "metadata": dataclasses.asdict(metadata)}
    manifest = {"schema_version": SCHEMA_VERSION, "export_format": "onnx", "components": components}
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def untie_head(model: onnx.ModelProto) -> int:
    """Undo `dedupe_tied` in memory: the head's Transpose(embedding table) back into its own initializer, so that
    onnxruntime's int8 quantizers, which quantize a MatMul only when its weight is an initializer, quantize the head
    (the decoder's largest MatMul: vocabulary x hidden per token).  Returns the number of heads untied."""
    from onnx import numpy_helper

    graph = model.graph
    tables = {t.name: t for t in graph.initializer}
    untied = 0
    for node in list(graph.node):
        if node.op_type == "Transpose" and node.input[0] in tables and node.output[0].endswith("_transposed_tied"):
            weight = numpy_helper.from_array(numpy_helper.to_array(tables[node.input[0]]).T.copy(), node.output[0])
            graph.initializer.append(weight)
            graph.node.remove(node)
            untied += 1
    return untied


def graph_files(folder: Path) -> list[Path]:
    """Every file the folder's graphs are stored in (graphs and their weights), for sizes and copies."""
    return [p for name in COMPONENTS.values() for p in (folder / name, folder / (name + DATA_SUFFIX)) if p.exists()]


def _start_token(model: nn.Module) -> int:
    start = getattr(model.config, "decoder_start_token_id", None)
    return int(start) if start is not None else 0


def _sample_source(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Two sources of lengths 7 and 5 (right-padded), token ids that every vocabulary has."""
    vocab = int(model.config.vocab_size)
    ids = torch.arange(4, 18, dtype=torch.long).remainder(vocab).reshape(2, 7)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    return ids, mask
