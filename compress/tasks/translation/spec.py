"""Settings of the translation task (a pydantic model, so the recipe can embed it as `translation:`)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TranslationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # data (None: guessed from the usual names, see compress.tasks.translation.data)
    source_column: str | None = None
    target_column: str | None = None
    source_prefix: str = Field("", description="text put before every source, e.g. 'translate English to German: ' for T5 "
                                               "(also used by `compress generate` on the run's variants)")
    max_source_length: int = Field(256, ge=8, description="source tokens per sentence (longer sources are truncated, counted "
                                                          "in the report)")
    # generation
    max_new_tokens: int = Field(128, ge=2, description="generated tokens per sentence at most")
    num_beams: int = Field(1, ge=1, description="1: greedy; more: beam search (scored and timed at batch 1)")
    length_penalty: float | None = Field(None, description="beam search: score / length ** penalty (None: the checkpoint's)")
    # timing
    batch_size: int = Field(4, ge=2, description="sentences translated together for latency_ms_batch (greedy)")
    # variants and calibration
    int8_dynamic: bool = True
    int8_static: bool = True
    int4_decoder: bool = Field(True, description="onnx-int4-decoder: int8 dynamic encoder, weight-only int4 decoder")
    block_size: int = Field(32, ge=16, description="int4 decoder: weight-only block size (32/64/128; power of two)")
    calib_sentences: int = Field(64, ge=1, description="source sentences that calibrate static int8")
    calib_decode_steps: int = Field(16, ge=1, description="greedy decode steps per calibration sentence, each one decoder feed "
                                                          "with the real cache")
