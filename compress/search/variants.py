"""Variant records of the searched mixed precision: onnx-int8-searched (classifiers), onnx-int4-searched (causal LMs).

Each build: sensitivity of every unit on the calibration feeds (KL proxy, cached), then the cut search with
a real measurement on the calibration data -- not the eval set, so the eval figures the report shows are not
the ones the search optimised. The searched model lands in the variant folder; `search/` beside it keeps
search.json (every trial, the Pareto front, why the winner won) and sensitivity.json for the report.
The LM search is seeded with `lm.int4_keep_8bit` (the hand-tuned list): a starting point that competes, never
the answer by default.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from edge_compress.compress.errors import CompressError
from edge_compress.compress.run.variants import BuildInput, Variant, register
from edge_compress.export.onnx_export import MODEL_FILE
from edge_compress.export.onnx_io import load_model, save_model

CLS, LM = ("text-classification",), ("causal-lm",)
SEARCH_DIR = "search"


def _cache(ctx: Any) -> Path:
    spec = ctx.recipe.search
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "edge-compress" / "sensitivity.json"
    return Path(spec.cache).expanduser() if spec.cache else default


def _budget(ctx: Any, baseline: dict[str, Any]):
    """The search's budget from the float model's measurement (its metric, and its per-item scores for judge: upper)."""
    from edge_compress.compress.search.search import Budget

    spec, metric = ctx.recipe.search, baseline["metric"]
    points = spec.budget if spec.budget is not None else ctx.recipe.max_accuracy_drop
    if spec.budget_pct is not None:
        points = abs(metric) * spec.budget_pct / 100.0
    items = baseline.get("items") if spec.judge == "upper" else None
    return Budget(metric, points, ctx.task.higher_is_better, items)


def _run(inp: BuildInput, scheme, feeds: list[dict[str, np.ndarray]], measure, seeds=(), order=None,
         measure_sensitivity=None) -> tuple[Path, dict[str, Any]]:
    """Sensitivity, then search; the winner copied to the variant's model.onnx (CompressError when none is within budget).
    `order(sensitivity) -> units`: the order the search cuts (default: most tolerant first);
    `measure_sensitivity() -> Sensitivity`: a task's own pass instead of the generic one on `feeds`."""
    from edge_compress.compress.search.executors import make_executor
    from edge_compress.compress.search.search import BEST, Candidate, search
    from edge_compress.compress.search.sensitivity import sensitivity

    ctx, spec, work = inp.ctx, inp.ctx.recipe.search, inp.folder / SEARCH_DIR
    started = time.monotonic()
    if measure_sensitivity is not None:
        sens = measure_sensitivity()
    else:
        with make_executor(spec.executor, spec.workers) as executor:
            sens = sensitivity(inp.source, scheme, feeds, direction=spec.direction, cache=_cache(ctx), executor=executor)
    sensitivity_s = time.monotonic() - started
    work.mkdir(parents=True, exist_ok=True)
    (work / "sensitivity.json").write_text(json.dumps(sens.as_dict(), indent=1))
    baseline = dict(measure(Candidate(-1, None, (), inp.source)))
    budget = _budget(ctx, baseline)
    # A timed objective measures one candidate at a time: latencies taken beside busy workers are noise.
    with make_executor("inline" if spec.objective != "size" else spec.executor, spec.workers) as executor:
        result = search(inp.source, scheme, order(sens) if order else sens.tolerant_first(), measure, budget, work, spec.objective,
                        spec.max_trials, spec.max_seconds, spec.steps, executor, None, seeds)  # parallel: the executor's
    total = time.monotonic() - started
    seconds = {"sensitivity": round(sensitivity_s, 1), "search": round(total - sensitivity_s, 1), "total": round(total, 1)}  # sensitivity 0 when cached
    if result.path is None:
        raise CompressError(f"the search found no candidate within the budget: {result.reason}",
                            "raise search.budget (or --max-accuracy-drop), or give more search.max_trials")
    # Re-saved rather than moved: a >2 GB winner's weights then get the folder's usual name (model.onnx_data).
    save_model(load_model(work / BEST), inp.folder / MODEL_FILE)
    for file in [work / BEST, *work.glob(".best-*.onnx_data")]:
        file.unlink()
    best = result.best
    fallback = [u for u in sens.tolerant_first() if u not in set(best["low"])]  # int4: the found keep-8-bit list
    return inp.folder / MODEL_FILE, {"search": {"low": best["low"], "fallback": fallback, "trials": len(result.trials),
                                                "stopped": result.stopped, "seconds": seconds,
                                                "budget": budget.max_drop, "judge": budget.as_dict()["judge"],
                                                "reason": result.reason, "search_metric": best["metric"],
                                                "search_drop_upper": best.get("drop_upper"),
                                                "search_baseline": budget.baseline, "files": f"{SEARCH_DIR}/",
                                                "units": len(sens.rows)}}


def _int8_searched(inp: BuildInput) -> tuple[Path, dict[str, Any]]:
    import tempfile

    from edge_compress.compress.search.measures import ClassifierAccuracy, Timed
    from edge_compress.compress.search.schemes import Int8Dynamic

    ctx, spec = inp.ctx, inp.ctx.recipe.search
    train = ctx.data.train
    if train is not None and train.labels:
        texts, labels = train.texts[:spec.search_samples], train.labels[:spec.search_samples]
    else:
        texts, labels = ctx.data.eval_texts[:spec.search_samples], list(ctx.data.references)[:spec.search_samples]
    limit = ctx.recipe.validate_.max_length
    feeds = tuple(dict(ctx.tokenizer([t], truncation=True, max_length=limit, return_tensors="np")) for t in texts)
    measure = ClassifierAccuracy(feeds, tuple(int(x) for x in labels))
    if spec.objective != "size":
        measure = Timed(measure, feeds[:ctx.recipe.validate_.latency_samples])
    calib = ctx.task.calibration_feeds(ctx)[:spec.calib_samples]
    with tempfile.TemporaryDirectory(dir=inp.folder, prefix=".unfused-") as tmp:
        source, bits = _embedding_source(inp, Path(tmp)) if spec.embeddings == "int4" else (inp.source, 8)
        source = _gemms_as_matmuls(source, Path(tmp))
        scheme = Int8Dynamic(ctx.preset, embedding_bits=bits, matmul_bits=4 if spec.matmuls == "int4" else 8)
        path, learned = _run(BuildInput(ctx, inp.line, inp.folder, source, inp.settings), scheme, calib, measure)
    learned["search"].update(embeddings=f"int{bits}", matmuls=spec.matmuls)
    return path, learned


def _gemms_as_matmuls(source: Path, tmp: Path) -> Path:
    """`source` with each Gemm that has a constant weight rewritten as MatMul + Add, by ORT's own quantizer helper.

    ORT's quantizer does this rewrite itself before it matches `nodes_to_quantize`, and names the new node
    `<gemm>_MatMul`: a unit named after the Gemm would never match, and the classifier head (exported as Gemm:
    pooler dense + classifier, 0.59 MB on MiniLM) stayed float in every searched model. Rewritten first, the head
    is a unit like any Linear layer and the search decides its precision."""
    from onnxruntime.quantization.onnx_model import ONNXModel

    model = load_model(source)
    inits = {t.name for t in model.graph.initializer}
    if not any(n.op_type == "Gemm" and len(n.input) > 1 and n.input[1] in inits for n in model.graph.node):
        return source
    ONNXModel(model).replace_gemm_with_matmul()
    return save_model(model, tmp / "gemm-as-matmul.onnx")


def _embedding_source(inp: BuildInput, tmp: Path) -> tuple[Path, int]:
    """The graph to search with 4-bit embedding tables in the search space, and the embedding bits it allows.

    GatherBlockQuantized replaces a Gather; ORT's EmbedLayerNormalization fusion (onnx-fp32-optimized) leaves none, and
    its quantized form (QEmbedLayerNormalization) has 8-bit tables only. So the line's fp32 export is optimized again at
    the same level without that one fusion (Attention, SkipLayerNorm, BiasGelu stay) and checked against the model,
    as the optimized variant is. Without a constant-table Gather either way, the tables stay at 8 bits."""
    from edge_compress.compress.console import warn
    from edge_compress.compress.quantize.int4 import constant_gathers
    from edge_compress.export.optimize import optimize_graph

    ctx = inp.ctx
    if constant_gathers(onnx.load(str(inp.source), load_external_data=False)):
        return inp.source, 4
    export = (inp.line.built.get("onnx-fp32") if inp.line is not None else None)
    if export is not None:
        path = optimize_graph(export.parent, tmp, ctx.recipe.optimize.level, fuse_embeddings=False)
        ctx.task.check_parity(ctx, inp.line.model, path)
        if constant_gathers(onnx.load(str(path), load_external_data=False)):
            return path, 4
    warn("no embedding Gather to quantize to 4 bits in this graph: the searched variant keeps 8-bit embedding tables")
    return inp.source, 8


def _int4_searched(inp: BuildInput) -> tuple[Path, dict[str, Any]]:
    import torch
    from edge_compress.compress.quantize.lm import matches
    from edge_compress.compress.search.measures import Perplexity
    from edge_compress.compress.search.schemes import Int4WeightOnly
    from edge_compress.compress.tasks.causal_lm.evaluate import LMEvaluation

    ctx, spec, lm = inp.ctx, inp.ctx.recipe.search, inp.ctx.recipe.lm
    if spec.objective != "size":
        raise CompressError("the int4 search optimises size only (decode latency is timed by the pipeline's rounds)",
                            "set search.objective: size for causal LMs")
    config = ctx.ckpt.model.config
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    # The calibration text as loaded (`data.train`: every text of it), not `data.calib_texts`: that holds only
    # static int8's `lm.calib_samples` texts, and none at all when static int8 and SmoothQuant are off.
    calibration = ctx.data.train.texts
    windows = LMEvaluation(calibration, ctx.tokenizer, lm.model_copy(update={"max_eval_tokens": spec.search_tokens}),
                           positions)
    measure = Perplexity(tuple((torch.cat([windows.prefix, windows.ids[b:e]])[None].numpy().astype(np.int64), new)
                               for b, e, new in windows.windows))
    texts = calibration[:spec.calib_samples]
    scheme = Int4WeightOnly(lm.block_size, lm.head_bits, lm.accuracy_level or None, lm.symmetric, tuple(lm.exclude))
    units = scheme.units(onnx.load(str(inp.source), load_external_data=False))
    hand_tuned = [u for u in units if not matches(u, lm.int4_keep_8bit)]
    parts = inp.folder / ".int4-parts"  # every body MatMul quantized once at 4 and at 8 bits; candidates pick from them
    try:
        scheme = scheme.prepare(inp.source, parts)
        return _run(inp, scheme, [], measure, seeds=[hand_tuned] if hand_tuned else [],
                    order=lambda sens: per_byte_order(sens, scheme.saved_bytes()),
                    measure_sensitivity=lambda: _lm_sensitivity(inp, scheme, texts))
    finally:
        shutil.rmtree(parts, ignore_errors=True)


def _lm_sensitivity(inp: BuildInput, scheme, texts: list[str]):
    """The PyTorch pass (compress.search.lm_sensitivity) on the run's float model; the generic ONNX pass on the
    calibration feeds when the units cannot be matched to its Linear modules."""
    from edge_compress.compress.console import warn
    from edge_compress.compress.search.executors import make_executor
    from edge_compress.compress.search.lm_sensitivity import tokenized, torch_sensitivity
    from edge_compress.compress.search.sensitivity import sensitivity
    from edge_compress.compress.tasks.causal_lm.calibration import calibration_feeds

    ctx, spec, lm = inp.ctx, inp.ctx.recipe.search, inp.ctx.recipe.lm
    try:
        return torch_sensitivity(ctx.ckpt.model, scheme, inp.source, tokenized(ctx.tokenizer, texts, lm.calib_max_length),
                                 _cache(ctx))
    except ValueError as err:
        warn(f"int4 sensitivity: {err}; measuring each unit on its own ONNX candidate instead (slower)")
    feeds = calibration_feeds(inp.source, ctx.tokenizer, texts, lm.calib_max_length, lm.calib_decode_steps, ctx.threads)
    with make_executor(spec.executor, spec.workers) as executor:
        return sensitivity(inp.source, scheme, feeds, direction=spec.direction, cache=_cache(ctx), executor=executor)


def per_byte_order(sens, saved: dict[str, int]) -> list[str]:
    """Units by sensitivity per byte the low precision saves, least first: the order that buys the most size for the
    least metric (a greedy knapsack), where most tolerant first would spend the budget on small units."""
    return [r.unit for r in sorted(sens.rows, key=lambda r: (r.score / max(saved.get(r.unit, 1), 1), r.unit))]


def _settings(ctx: Any) -> dict[str, Any]:
    return {"search": ctx.recipe.search.model_dump(), "preset": ctx.preset.as_dict()}


def _enabled(ctx: Any) -> bool:
    return ctx.recipe.search is not None


# Built on the run's last line only (compress.run.variants.for_line): after trim: (on by default with search:) and prune:,
# that is the one searched line, e.g. pruned-trimmed-onnx-int8-searched (issue 15, item 4).
register(Variant("onnx-int8-searched", "int8", _int8_searched, CLS, order=25, parent=("onnx-fp32-optimized", "onnx-fp32"),
                 settings=_settings, enabled=_enabled, last_line_only=True))
register(Variant("onnx-int4-searched", "int4", _int4_searched, LM, order=65, settings=_settings, enabled=_enabled,
                 last_line_only=True))
