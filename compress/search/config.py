"""The recipe's `search:` section: present = build the searched variants (onnx-int8-searched / onnx-int4-searched)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SearchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    budget: float | None = Field(None, ge=0, description=(
        "points of the primary metric the searched variant may lose, measured on the search data (default: "
        "max_accuracy_drop); perplexity points for causal LMs"))
    budget_pct: float | None = Field(None, gt=0, description=(
        "the budget as a percentage of the float model's metric on the search data (e.g. 6: perplexity may rise 6 %); "
        "overrides budget"))
    objective: Literal["size", "latency", "both"] = Field("size", description=(
        "what the winner minimises among the trials within budget; latency/both time each trial in the search's "
        "own process (inline executor), since timings next to busy workers are noise"))
    max_trials: int = Field(16, ge=1, description="measured candidates at most (greedy steps + bisection + seeds)")
    max_seconds: float | None = Field(None, gt=0, description="no new trial starts after this long")
    steps: int = Field(8, ge=1, description="greedy steps over the units ordered by sensitivity")
    direction: Literal["only", "loo"] = Field("only", description="sensitivity: only that unit low (default) or leave one out")
    calib_samples: int = Field(8, ge=1, description=(
        "calibration feeds the KL proxy runs on (causal LMs keep vocabulary-sized logits per token: keep it small)"))
    search_samples: int = Field(2000, ge=10, description=(
        "labelled calibration texts each trial is scored on (classifiers; the eval set when calibration has no labels); "
        "with judge: upper, more texts = a tighter bound = more of the budget usable"))
    search_tokens: int = Field(4096, ge=64, description=(
        "causal LMs: calibration-text tokens each trial's perplexity is scored on (at least 2048: on 512 the noise "
        "was as large as a 5 % budget)"))
    judge: Literal["upper", "point"] = Field("upper", description=(
        "upper = a trial is within budget when the paired bootstrap's 95 % upper bound of its drop on the search data "
        "is, so noise cannot pass a cut; point = its point estimate (more compression, and more eval misses)"))
    executor: Literal["process", "inline", "ray"] = Field("process", description="where candidates run")
    workers: int | None = Field(None, ge=1, description="parallel candidates (default: cores, at most 4)")
    embeddings: Literal["int4", "int8"] = Field("int4", description=(
        "classifiers: int4 = each embedding table is int8 or, where the search finds it within budget, 4-bit "
        "GatherBlockQuantized (the graph is optimized without the EmbedLayerNormalization fusion); int8 = tables are "
        "units like the MatMuls, int8 or float"))
    matmuls: Literal["int8", "int4"] = Field("int8", description=(
        "classifiers: int8 = each Linear is int8 or float; int4 = each is int8 or, where the search finds it within "
        "budget, 4-bit MatMulNBits (ORT's fused attention stays int8)"))
    trim: bool = Field(True, description=(
        "classifiers: search from the vocabulary-trimmed model (trim: with its defaults) when the recipe has no trim: "
        "section; false = search the untrimmed model"))
    cache: str | None = Field(None, description="sensitivity cache file (default ~/.cache/edge-compress/sensitivity.json)")
