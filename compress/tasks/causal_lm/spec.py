"""Settings of the causal-LM stage (a pydantic model, so the recipe can embed it as `lm:`)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class LMSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # evaluation
    context: int = Field(256, ge=8, description="tokens per perplexity window (at most the model's max positions)")
    stride: int = Field(128, ge=1, description="window step; each token is scored once, with >= context - stride tokens of history")
    max_eval_tokens: int | None = Field(4096, ge=16, description="eval text is cut to this many tokens (None: all)")
    prompts: int = Field(16, ge=1, description="greedy-generation prompts (first prompt_tokens of eval texts)")
    prompt_tokens: int = Field(32, ge=1)
    new_tokens: int = Field(32, ge=2, description="greedy tokens generated per prompt (exact match and decode timing)")
    batch_size: int = Field(4, ge=2, description="prompts decoded together for latency_ms_batch")
    # calibration (static int8)
    calib_samples: int = Field(32, ge=1, description="calibration texts")
    calib_max_length: int = Field(128, ge=4, description="prefill tokens per calibration text")
    calib_decode_steps: int = Field(4, ge=1, description="single-token decode feeds per calibration text")
    # variants
    int8_dynamic: bool = True
    int8_static: bool = True
    smoothquant_alpha: float | None = Field(None, ge=0, le=1, description=(
        "also build the int8 dynamic/static variants from a SmoothQuant-ed copy (…-smoothquant): activation outliers "
        "moved into the weights (compress.quantize.smooth); 0.5 is the usual start"))
    int8_weight_only: bool = True
    int4_weight_only: bool = True
    block_size: int = Field(32, ge=16, description="weight-only block size (32/64/128; power of two)")
    accuracy_level: Literal[0, 1, 2, 3, 4] = Field(4, description=(
        "MatMulNBits compute: 0 = as input (fp32), 4 = int8 activations (fastest on CPU). ORT 1.32 has no fast fp32 "
        "kernel for 8-bit weights: at 0 an 8-bit MatMulNBits dequantizes per call (60-180x slower per op, seconds per token "
        "for a 262k-vocab head), so keep 4 whenever 8-bit weights are in the graph (int8 weight-only, head, keep_8bit)"))
    symmetric: bool = False
    int4_keep_8bit: list[str] = Field(
        default_factory=lambda: ["*/v_proj/*", "*/o_proj/*", "*/up_proj/*", "*/down_proj/*"],
        description=("MatMuls (names or patterns) kept at 8 bits in the int4 weight-only variant; patterns that match "
                     "nothing are ignored. Default: the projections 4-bit RTN hurts most on Gemma 3 270M (Llama-style "
                     "names): +3.7 % perplexity at 3.6x smaller instead of +31 % at 4.05x (bench/RESULTS.md)"))
    head_bits: Literal[4, 8] = Field(8, description="tied LM head / embedding: weight-only bits (shared table)")
    exclude: list[str] = Field(default_factory=list, description="MatMul node names kept in float in every quantized variant")
