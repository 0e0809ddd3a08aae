"""Extractive question answering: SQuAD F1 (primary) and exact match, span agreement with the float model, speed.

Data, windows, post-processing and metrics are the library pieces beside this module; this
plug-in wires them into the one lifecycle.  Eval data without answers is scored by agreement
with the float model only (primary metric `agreement_f1`), and the report says so.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from edge_compress.compress.console import info, warn
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks.base import Scored, Task, TaskData, check_head
from edge_compress.compress.tasks.question_answering.data import QAData, QAExample, load_qa_data
from transformers import AutoModelForQuestionAnswering, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.models.auto.modeling_auto import MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES

SHOWN_PROBLEMS = 50   # skipped/moved answers listed by id in report.json (all are counted)


@dataclass
class QATaskData(TaskData):
    """TaskData plus the examples themselves (eval_texts / calib_texts hold their questions)."""
    eval_examples: list[QAExample] = field(default_factory=list)
    calib_examples: list[QAExample] = field(default_factory=list)


class QuestionAnswering(Task):
    name = "question-answering"
    primary_metric = "f1"
    auto_model = AutoModelForQuestionAnswering
    # GPU runners (pytorch-fp32 on cuda, export/device.TargetRunner) return one `logits` output; a QA model has two.
    # mobile: the ORT-format package, scored and timed on this host's CPU. No fixed-shape package (its check reads texts).
    targets = frozenset({"cpu", "mobile"})
    fixed_shapes = False
    # compress.prune's importance loss and compress.distill's loss read `.logits` (a QA model returns start_logits and
    # end_logits) and their batches are single texts, not question + context windows: README "Question answering".
    torch_stages = frozenset()

    def check_architecture(self, config: PretrainedConfig, source: str) -> None:
        check_head(config, source, MODEL_FOR_QUESTION_ANSWERING_MAPPING_NAMES, "ForQuestionAnswering",
                   "extractive question answering", "use a QA checkpoint (BERT, DistilBERT, RoBERTa, MiniLM, ... saved as "
                   "*ForQuestionAnswering)", "a question-answering model: its span head")

    def prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        if not tokenizer.is_fast:
            raise CompressError(f"{type(tokenizer).__name__} is a slow (Python) tokenizer, which cannot map answers back to "
                                "the context (no character offsets)", "save the checkpoint with its fast tokenizer "
                                                                      "(tokenizer.json): AutoTokenizer.from_pretrained(..., "
                                                                      "use_fast=True).save_pretrained(folder)")

    def metrics(self, outputs: Any, references: Any, baseline_outputs: Any | None) -> dict[str, float]:
        """`outputs`/`baseline_outputs` are `compress.tasks.question_answering.evaluate.QAOutputs`."""
        from edge_compress.compress.tasks.question_answering.evaluate import qa_output_metrics

        return qa_output_metrics(outputs, references, baseline_outputs)

    # --- lifecycle steps ------------------------------------------------------------------------------------------

    def load_data(self, options: Any, ckpt: Any, recipe: Any) -> TaskData:
        """Eval questions (answers checked against their contexts: skipped/moved ones reported); calibration questions =
        --calib-data, else train.* beside the eval file, else the eval questions (warned)."""
        from edge_compress.compress.data import sibling_train_file

        spec = recipe.qa
        columns = {"question_column": spec.question_column, "context_column": spec.context_column,
                   "answers_column": spec.answers_column, "answer_start_column": spec.answer_start_column,
                   "id_column": spec.id_column}
        data = load_qa_data(options.eval_data, **columns)
        examples = data.examples[:recipe.validate_.max_eval_samples or None]
        _report_problems(data, "eval")
        source = options.calib_data or sibling_train_file(options.eval_data)
        if source is None:
            warn("no --calib-data and no train file beside the eval file: calibrating static int8 on the eval questions")
            calib = data
        else:
            calib = load_qa_data(source, **columns)
            _report_problems(calib, "calibration")
        calib_examples = list(calib.examples)
        random.Random(recipe.seed).shuffle(calib_examples)  # the same calibration set on every run
        calib_examples = calib_examples[:spec.calib_windows]  # each gives at least one window
        labelled = data.labelled
        if not labelled:
            self.primary_metric = "agreement_f1"  # this run's instance: selection and the report read it
            warn(f"{data.source} has no answers: variants are scored by agreement with the float model only "
                 "(agreement_f1 is the primary metric; no exact match or F1)")
        impossible = spec.allow_impossible if spec.allow_impossible is not None else any(e.is_impossible for e in examples)
        references = {e.id: [a.text for a in e.answers or []] for e in examples} if labelled else None
        eval_section = {"source": data.source, "samples": len(examples), "labelled": labelled,
                        "metrics": ("SQuAD exact match and F1 against the answers, span agreement with the float model"
                                    if labelled else "agreement with the float model only: the eval data has no answers"),
                        "unanswerable": sum(e.is_impossible for e in examples), "allow_impossible": impossible,
                        **_problems(data), "max_length": spec.max_length, "doc_stride": spec.doc_stride,
                        "n_best": spec.n_best, "max_answer_length": spec.max_answer_length}
        return QATaskData([e.question for e in examples], references, [e.question for e in calib_examples], train=calib,
                          sections={"eval": eval_section,
                                    "calibration": {"source": calib.source, "samples": len(calib_examples),
                                                    "windows": f"up to {spec.calib_windows}", **_problems(calib)}},
                          eval_examples=examples, calib_examples=calib_examples)

    def evaluation(self, ckpt: Any, data: TaskData, recipe: Any):
        from edge_compress.compress.tasks.question_answering.evaluate import QAEvaluation

        spec, v = recipe.qa, recipe.validate_
        positions = getattr(ckpt.model.config, "max_position_embeddings", None)
        if positions and spec.max_length > positions:
            raise CompressError(f"qa.max_length {spec.max_length} is longer than the model's {positions} positions",
                                f"set qa.max_length to at most {positions} (and qa.doc_stride below it) in the recipe")
        evaluation = QAEvaluation(data.eval_examples, ckpt.tokenizer, spec, data.references,
                                  data.sections["eval"]["allow_impossible"], v.latency_samples, v.warmup)
        data.sections["eval"].update(evaluation.summary())
        info(f"{len(data.eval_examples)} questions in {evaluation.summary()['windows']} windows of at most {spec.max_length} "
             f"tokens (stride {spec.doc_stride})")
        return evaluation

    def calibration_feeds(self, ctx: Any) -> list[dict[str, np.ndarray]]:
        from edge_compress.compress.tasks.question_answering.calibration import calibration_feeds

        spec = ctx.recipe.qa
        return calibration_feeds(ctx.tokenizer, ctx.data.calib_examples, ctx.recipe.quantize.static.calibration_method,
                                 spec.max_length, spec.doc_stride, spec.calib_windows, ctx.recipe.seed)

    def export_sample(self, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
        """Question + context pairs of different lengths, padded: the inputs the graph runs on (token_type_ids too)."""
        return dict(tokenizer(["what is the graph traced on?", "why?"],
                              ["the graph is traced on a question and its context", "a short context"],
                              padding=True, return_tensors="pt"))

    def check_parity(self, ctx: Any, model: PreTrainedModel, path: Path) -> None:
        """The export must reproduce its PyTorch model on real eval windows, at batch 1 and in one padded batch."""
        from edge_compress.compress.tasks.question_answering.runner import onnx_qa_runner, torch_qa_runner

        torch_run, onnx_run = torch_qa_runner(model), onnx_qa_runner(path, ctx.threads)
        evaluation = ctx.evaluation
        diff = 0.0
        for feed in [*evaluation.singles[:4], evaluation.big[0]]:
            for a, b in zip(torch_run(feed), onnx_run(feed)):
                diff = max(diff, float(np.max(np.abs(a - b))))
        atol = ctx.recipe.export.parity_atol
        if diff > atol:
            raise CompressError(f"the ONNX export disagrees with PyTorch: max |start/end logit difference| {diff:.2e} > "
                                f"{atol:g} on the eval windows", "export with another opset (export.opset), or raise "
                                                                "export.parity_atol in the recipe if the difference is "
                                                                "acceptable")

    def open_torch(self, model: PreTrainedModel) -> Any:
        from edge_compress.compress.tasks.question_answering.runner import torch_qa_runner

        return torch_qa_runner(model)

    def open_onnx(self, path: Path, threads: int, target: Any = None, precision: str = "fp32", ctx: Any = None) -> Any:
        from edge_compress.compress.tasks.question_answering.runner import onnx_qa_runner

        self.require_cpu(target, "use --target cpu or mobile")
        return onnx_qa_runner(path, threads)

    def package_check(self, ctx: Any, path: Path, baseline: Scored) -> dict[str, Any]:
        from edge_compress.compress.tasks.question_answering.runner import onnx_qa_runner

        scored = ctx.evaluation.score(onnx_qa_runner(path, ctx.threads), f"package/{path.name}")
        metrics, _ = ctx.evaluation.metrics(scored, baseline)
        return {"metrics": metrics, "open": lambda: onnx_qa_runner(path, ctx.threads)}


def _problems(data: QAData) -> dict[str, Any]:
    """Skipped and moved answers for report.json: counted, and the first SHOWN_PROBLEMS listed with their reasons."""
    return {"skipped": len(data.skipped), "moved": len(data.moved),
            "skipped_examples": [{"id": p.id, "reason": p.reason} for p in data.skipped[:SHOWN_PROBLEMS]],
            "moved_examples": [{"id": p.id, "reason": p.reason} for p in data.moved[:SHOWN_PROBLEMS]]}


def _report_problems(data: QAData, role: str) -> None:
    if data.skipped:
        first = data.skipped[0]
        warn(f"{len(data.skipped)} {role} questions in {data.source} were skipped: no usable answer "
             f"(e.g. {first.id}: {first.reason}); listed in report.json")
    if data.moved:
        warn(f"{len(data.moved)} answers in {data.source} had an answer_start that did not match their text and were moved "
             "to the nearest occurrence; listed in report.json")
