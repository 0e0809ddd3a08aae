"""`compress answer OUT_OR_VARIANT --question ... --context ...`: answer with a compressed extractive-QA model.

Given a run's OUT folder, the report's selected variant is used (else the first variant that
built); given a variant folder, that one.  The context is cut into windows exactly as the run
evaluated it (the variant's manifest holds the run's `qa:` settings): a context longer than one
window is read with the document stride, never truncated, and the best span over all windows wins.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from edge_compress.compress.commands.generate import resolve_variant
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks.question_answering.data import QAExample
from edge_compress.compress.tasks.question_answering.features import prepare_features
from edge_compress.compress.tasks.question_answering.postprocess import Prediction, postprocess
from edge_compress.compress.tasks.question_answering.runner import onnx_qa_runner, window_logits
from edge_compress.compress.tasks.question_answering.spec import QASpec
from edge_compress.export.onnx_export import MODEL_FILE
from transformers import AutoTokenizer


def run_settings(folder: Path) -> QASpec:
    """The `qa:` settings of the run that built the variant (defaults for a folder without a manifest)."""
    manifest = folder / "manifest.json"
    if not manifest.exists():
        return QASpec()
    recipe = json.loads(manifest.read_text()).get("recipe") or {}
    return QASpec.model_validate(recipe.get("qa") or {})


def answer(path: Path | str, question: str, context: str, threads: int | None = None) -> tuple[Prediction, int]:
    """The best span of `context` for `question`, and how many windows the context took."""
    for name, value in (("question", question), ("context", context)):
        if not value or not value.strip():
            raise CompressError(f"the {name} is empty", f"pass a non-empty --{name} '...'")
    folder = resolve_variant(Path(path), "question-answering")
    spec = run_settings(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    example = QAExample("answer", question, context, None)
    features = prepare_features(tokenizer, [example], spec.max_length, spec.doc_stride)
    run = onnx_qa_runner(folder / MODEL_FILE, threads or min(4, os.cpu_count() or 1))
    start, end = window_logits(run, features)
    allow_impossible = spec.allow_impossible if spec.allow_impossible is not None else _run_allowed_impossible(folder)
    prediction = postprocess([example], features, start, end, spec.n_best, spec.max_answer_length, allow_impossible,
                             spec.null_threshold)["answer"]
    return prediction, len(features)


def _run_allowed_impossible(folder: Path) -> bool:
    """qa.allow_impossible left to the run (None): what it decided from its eval data, as its report says."""
    report = folder.parent.parent / "report.json"
    if not report.exists():
        return False
    return bool(json.loads(report.read_text()).get("eval", {}).get("allow_impossible", False))
