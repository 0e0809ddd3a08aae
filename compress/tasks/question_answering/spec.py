"""Settings of the question-answering task (a pydantic model, so the recipe can embed it as `qa:`)."""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# The usual SQuAD windows. Here, not in features.py, so that the recipe (and `compress --help`) imports no transformers.
MAX_LENGTH = 384
DOC_STRIDE = 128


class QASpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # data (None: guessed from the usual names, see compress.tasks.question_answering.data)
    question_column: str | None = None
    context_column: str | None = None
    answers_column: str | None = None
    answer_start_column: str | None = None
    id_column: str | None = None
    # windows and post-processing
    max_length: int = Field(MAX_LENGTH, ge=16, description="tokens per window (question + context); latency is also timed at it")
    doc_stride: int = Field(DOC_STRIDE, ge=1, description="context tokens shared by neighbouring windows of a long context")
    n_best: int = Field(20, ge=1, description="start and end candidates per window")
    max_answer_length: int = Field(30, ge=1, description="longest answer in tokens")
    allow_impossible: bool | None = Field(None, description=(
        "answer '' when the no-answer score beats the best span (SQuAD v2); None: on when the eval data has unanswerable "
        "questions"))
    null_threshold: float = Field(0.0, description="margin the no-answer score must beat the best span by")
    # timing and calibration
    batch_size: int = Field(8, ge=2, description="windows per padded batch for latency_ms_batch")
    calib_windows: int = Field(128, ge=1, description="question + context windows that calibrate static int8")
