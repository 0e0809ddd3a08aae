"""The trim stage: a copy of the last line's model with its vocabulary trimmed to the corpus, as a `trimmed-` line.

The line carries its own run context (`Line.ctx`): the trimmed tokenizer encodes its eval, calibration and parity
inputs and is the tokenizer its variant folders ship, while its scores are compared with the untrimmed PyTorch
baseline on the same eval texts, so words outside the corpus (which now fall back to smaller pieces) count.
"""
from __future__ import annotations

import copy
import dataclasses
from typing import Any

from edge_compress.compress.checkpoint import Checkpoint
from edge_compress.compress.console import info
from edge_compress.compress.run.variants import Line


def trim_stage(ctx: Any, line: Line) -> tuple[Line, dict[str, Any]]:
    """The trimmed line built from ``line`` and the report section ("trimming")."""
    from edge_compress.compress.recipe import TrimSpec
    from edge_compress.compress.trim import trim

    spec = ctx.recipe.trim or TrimSpec()  # no trim: section, but search: asked for the trimmed line (stages._trims)
    texts = ctx.data.train.texts if spec.corpus == "train" else ctx.data.calib_texts
    model = copy.deepcopy(line.model)
    # The shipped tokenizer, never encoded with: what the trimmed folders ship keeps its saved settings.
    result = trim(model, ctx.ship_tokenizer, texts, spec.to_config())
    section = {**result.to_dict(), "corpus": spec.corpus,
               "corpus_source": ctx.data.train.source if spec.corpus == "train" else "calibration sample",
               "eval_fallback_rate": round(result.fallback_rate(ctx.data.eval_texts), 4)}
    info(f"trimmed the vocabulary to {result.vocab_after} of {result.vocab_before} tokens ({result.kept_fraction:.0%}) on "
         f"{len(texts)} {spec.corpus} texts: {result.params_after / 1e6:.2f}M of {result.params_before / 1e6:.2f}M params; "
         f"{section['eval_fallback_rate']:.1%} of eval tokens fall back to smaller pieces")
    ship = copy.deepcopy(result.tokenizer)  # copied before the evaluation below encodes with the working one
    ckpt = Checkpoint(model.eval(), result.tokenizer, ctx.ckpt.source, ctx.ckpt.weights_bytes)
    line_ctx = dataclasses.replace(ctx, ckpt=ckpt, ship_tokenizer=ship, evaluation=ctx.task.evaluation(ckpt, ctx.data, ctx.recipe))
    return Line(line.prefix + "trimmed-", ckpt.model, settings={**line.settings, "trimming": section}, ctx=line_ctx), section
