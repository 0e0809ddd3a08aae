"""Variant records of the translation task: the two-graph fp32 export, int8 of both graphs (each quantized on its own),
and an int4 weight-only decoder behind an int8 encoder.

Why per graph: the encoder runs once per sentence and the decoder once per token, on different activations;
onnxruntime's quantizers take one graph at a time (compress.quantize.ptq wraps them), and quantizing the two
separately is what lets static int8 calibrate the decoder on *its* inputs: real greedy decode steps of the
fp32 export with the cache each step really had (calibration.py), not a prefill-shaped stand-in.
A built folder is made whole again afterwards: each graph's weights in `<graph>.data` and export.json
copied, so it still loads with ExportedModel.from_pretrained and with plain onnxruntime.
"""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
from edge_compress.compress.run.variants import BuildInput, Variant, register
from edge_compress.export.hf_manifest import MANIFEST_FILE
from edge_compress.export.seq2seq import COMPONENTS, externalize, untie_head

MT = ("translation",)


def _export(inp: BuildInput) -> tuple[Path, dict[str, Any]]:
    path = inp.ctx.task.export(inp.line.model, inp.ctx.tokenizer, inp.folder, inp.ctx.recipe.export.opset)
    return path, {"components": component_bytes(inp.folder)}


def component_bytes(folder: Path) -> dict[str, int]:
    """Bytes on disk per graph (graph + its weights file): the report's size per component."""
    from edge_compress.export.hf_manifest import model_files

    return {name: sum(p.stat().st_size for p in model_files(folder / file)) for name, file in COMPONENTS.items()}


def _per_graph(quantize: Callable[[BuildInput, str, Path, Path], None],
               untie: tuple[str, ...] = tuple(COMPONENTS)) -> Callable[[BuildInput], tuple[Path, dict]]:
    """A build that quantizes encoder.onnx and decoder.onnx of the parent folder into this variant's folder; the graphs
    in `untie` get their tied LM head back as an initializer first (export.seq2seq.untie_head), so int8 quantizes it."""
    def build(inp: BuildInput) -> tuple[Path, dict[str, Any]]:
        source = inp.source.parent
        with tempfile.TemporaryDirectory() as tmp:
            for component, file in COMPONENTS.items():
                inline, staged = Path(tmp) / f"inline-{file}", Path(tmp) / file
                # onnxruntime's pre-processing copies a graph without its external weights file: quantize an inline copy
                graph = onnx.load(str(source / file))
                if component in untie:
                    untie_head(graph)
                onnx.save_model(graph, str(inline))
                quantize(inp, component, inline, staged)
                shutil.move(staged, inp.folder / file)
                externalize(inp.folder / file)
        shutil.copy(source / MANIFEST_FILE, inp.folder / MANIFEST_FILE)
        return inp.folder / COMPONENTS["decoder"], {"components": component_bytes(inp.folder)}
    return build


def _dynamic(inp: BuildInput, component: str, src: Path, dst: Path) -> None:
    from edge_compress.compress.quantize.ptq import quantize_int8_dynamic

    quantize_int8_dynamic(src, dst, inp.ctx.preset)


def _static(inp: BuildInput, component: str, src: Path, dst: Path) -> None:
    from edge_compress.compress.quantize.ptq import quantize_int8_static
    from edge_compress.compress.tasks.translation.calibration import calibration_feeds

    scratch = inp.line.scratch
    if "translation_calibration" not in scratch:  # one decode pass of the fp32 export feeds both graphs
        spec = inp.ctx.recipe.translation
        scratch["translation_calibration"] = calibration_feeds(inp.source.parent, inp.ctx.tokenizer, inp.ctx.data.calib_texts,
                                                               inp.ctx.evaluation.decoding, spec.max_source_length,
                                                               spec.calib_decode_steps, inp.ctx.threads)
    feeds = scratch["translation_calibration"][component]
    quantize_int8_static(src, dst, inp.ctx.preset, feeds, "minmax")


def _int4_decoder(inp: BuildInput, component: str, src: Path, dst: Path) -> None:
    """The encoder int8 dynamic (it runs once per sentence, on many tokens: int8 GEMMs pay); the decoder, which runs
    once per token at batch 1 and is bound by reading its weights, weight-only int4 (MatMulNBits, int8 activations
    at accuracy level 4), its tied embedding / LM head at 8 bits."""
    from edge_compress.compress.quantize.lm import HeadSpec, quantize_weight_only

    if component == "encoder":
        _dynamic(inp, component, src, dst)
        return
    block = inp.ctx.recipe.translation.block_size
    quantize_weight_only(src, dst, 4, block, HeadSpec(8, block, 4), 4)


def _static_settings(ctx: Any) -> dict[str, Any]:
    spec = ctx.recipe.translation
    return {"preset": ctx.preset.as_dict(), "calibration_method": "minmax (feeds of varying shapes: sources, decode steps)",
            "calibration_sentences": len(ctx.data.calib_texts), "decode_steps_per_sentence": spec.calib_decode_steps,
            "graphs": "encoder and decoder, each quantized with its own calibration feeds"}


register(Variant("onnx-fp32", "fp32", _export, MT, order=0, parent=(), parity=True, fatal=True))
register(Variant("onnx-int8-dynamic", "int8", _per_graph(_dynamic), MT, order=20,
                 settings=lambda ctx: {"preset": ctx.preset.as_dict(), "graphs": "encoder and decoder"},
                 enabled=lambda ctx: ctx.recipe.translation.int8_dynamic))
register(Variant("onnx-int8-static", "int8", _per_graph(_static), MT, order=30, settings=_static_settings,
                 enabled=lambda ctx: ctx.recipe.translation.int8_static))
register(Variant("onnx-int4-decoder", "int4", _per_graph(_int4_decoder, untie=("encoder",)), MT, order=60,
                 settings=lambda ctx: {"encoder": "int8 dynamic", "preset": ctx.preset.as_dict(),
                                       "decoder": "weight-only int4 (RTN, onnxruntime MatMulNBits, accuracy level 4)",
                                       "block_size": ctx.recipe.translation.block_size,
                                       "head": "tied embedding / LM head weight-only int8"},
                 enabled=lambda ctx: ctx.recipe.translation.int4_decoder))
