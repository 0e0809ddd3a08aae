"""What the pipeline needs to know about a task, as one small interface.

The lifecycle (compress.run.pipeline) is the same for every task; a task changes only
how data is read (`load_data`), how the model is exported (`export`), how a model is
opened, scored and timed (`open_torch`, `open_onnx`, `evaluation`), what a variant
folder holds besides model.onnx and export.json (`complete_folder`), and which deployment targets
mean something for it (`targets`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

from edge_compress.export.timing import Block, RoundLatency
from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class TaskData:
    """Eval data, calibration/training data and what the report says about them."""
    eval_texts: list[str]
    references: Any                      # labels for classifiers; None where the text is its own reference
    calib_texts: list[str]               # sampled for calibration (static int8, SmoothQuant)
    train: Any = None                    # what torch stages train/score on (TextData for classifiers)
    sections: dict[str, Any] = field(default_factory=dict)   # report.json "eval" and "calibration"


@dataclass
class Scored:
    """A model's outputs on the eval set: `outputs` at batch 1 unpadded (what selection uses), `outputs_batch` padded."""
    outputs: Any
    outputs_batch: Any = None


class TaskEvaluation(Protocol):
    """Inputs tokenized once, so every model sees identical inputs, the same threads and the same protocol."""

    batch_size: int           # of the larger timed batch
    seq_len: float            # mean tokens of the batch-1 timed inputs
    batch_seq_len: float

    def score(self, model: Any, label: str) -> Scored: ...

    def metrics(self, scored: Scored, baseline: Scored | None) -> tuple[dict[str, float], dict[str, float] | None]: ...

    def timing(self, model: Any) -> Block: ...

    def timing_metrics(self, single: RoundLatency, batch: RoundLatency, extras: dict[str, float]) -> dict[str, float]: ...


class Task(ABC):
    name: ClassVar[str]
    primary_metric: ClassVar[str]
    higher_is_better: ClassVar[bool] = True
    auto_model: ClassVar[Any]           # transformers Auto class
    targets: ClassVar[frozenset[str]] = frozenset({"cpu", "cuda", "tensorrt", "mobile"})   # where variants can be measured
    fixed_shapes: ClassVar[bool] = True                                                    # package.fixed_shape means something
    torch_stages: ClassVar[frozenset[str]] = frozenset({"prune", "distill", "qat"})        # recipe stages this task can run

    @abstractmethod
    def check_architecture(self, config: PretrainedConfig, source: str) -> None:
        """Raise CompressError when this task cannot use the checkpoint's architecture."""

    def prepare(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
        """Fix up model/tokenizer (e.g. a pad token) before anything runs."""

    @abstractmethod
    def metrics(self, outputs: Any, references: Any, baseline_outputs: Any | None) -> dict[str, float]:
        """Task metrics of one variant's outputs, plus agreement with the baseline's."""

    # --- the lifecycle's per-task steps ------------------------------------------------------------------------

    @abstractmethod
    def load_data(self, options: Any, ckpt: Any, recipe: Any) -> TaskData:
        """Eval and calibration data, checked (bad files fail here, before any slow step)."""

    @abstractmethod
    def evaluation(self, ckpt: Any, data: TaskData, recipe: Any) -> TaskEvaluation:
        """The one evaluation every model of the run goes through."""

    def export(self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path, opset: int | None) -> Path:
        """torch -> folder/model.onnx (+ export.json) through export.onnx_export's table for this task (raises
        CompressError with a fix).

        One graph, inputs to outputs, is what every single-graph task ships; tasks with a cache override this."""
        from edge_compress.compress.errors import CompressError
        from edge_compress.export.onnx_export import ExportError, export_to_onnx

        try:
            return export_to_onnx(model, folder, self.name, self.export_sample(tokenizer), opset)
        except ExportError as err:
            raise CompressError(str(err), err.hint or "try another ONNX opset (recipe export.opset: 14 or 18); an operator "
                                                      "no opset supports means torch.onnx cannot export this architecture") from err

    def export_sample(self, tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
        """What the graph is traced on: two texts of different lengths, padded, so neither axis is traced at size 1
        and the attention mask's padding path is in the graph."""
        return dict(tokenizer(["an example text the graph is traced on", "a short one"], padding=True, return_tensors="pt"))

    def graph_paths(self, path: Path) -> list[Path]:
        """Every graph of the variant whose build returned `path` (sizes, parameters and the runtime-graph check cover
        them all): one for single-graph tasks; a seq2seq folder holds an encoder and a decoder."""
        return [path]

    def check_parity(self, ctx: Any, model: PreTrainedModel, path: Path) -> None:
        """Raise CompressError when the export at `path` does not reproduce `model` on real eval inputs."""

    @abstractmethod
    def open_torch(self, model: PreTrainedModel) -> Any:
        """What `evaluation.score` / `evaluation.timing` take for the PyTorch model."""

    @abstractmethod
    def open_onnx(self, path: Path, threads: int, target: Any = None, precision: str = "fp32", ctx: Any = None) -> Any:
        """The same for an ONNX variant, on `target` (None: this host's CPU)."""

    def calibration_feeds(self, ctx: Any) -> list[dict[str, Any]]:
        """Static int8's calibration inputs (one model call each), shaped the way the model runs: one eval-like text per
        feed by default; a task whose inputs are not single texts (QA's question + context windows) says its own."""
        from edge_compress.compress.tasks.text_classification.calibration import calibration_feeds

        spec = ctx.recipe.quantize.static
        return calibration_feeds(ctx.tokenizer, ctx.data.calib_texts, spec.calibration_method, ctx.recipe.validate_.max_length)

    def require_cpu(self, target: Any, fix: str) -> None:
        """Refuse a non-CPU target for a task that has no runner there (its variants are measured on this host's CPU)."""
        from edge_compress.compress.errors import CompressError

        if target is not None and target.name != "cpu":
            raise CompressError(f"{self.name} variants are not measured on {target.name}", fix)

    def complete_folder(self, folder: Path, model: PreTrainedModel) -> None:
        """Files besides model.onnx and the tokenizer that loading the folder needs (ExportedModel reads config.json)."""
        if not (folder / "config.json").exists():
            model.config.save_pretrained(folder)

    def training_texts(self, source: str, config: PretrainedConfig, text_column: str | None,
                       label_column: str | None) -> Any:
        """`compress prune`'s --calib-data as `compress.data.TextData`: labelled when the file has labels the model knows."""
        from edge_compress.compress.data import load_training_texts

        return load_training_texts(source, config.label2id, config.num_labels, text_column, label_column)

    def prune_batches(self, ckpt: Any, data: Any, recipe: Any) -> list[dict[str, Any]]:
        """What structured pruning scores head/neuron importance on (`compress.run.prune_stage`): the training texts,
        `prune.batch_size` at a time, padded, with their labels when they have them. A task whose loss is not one per
        text (a causal LM's next-token loss) says its own."""
        import torch

        size, max_length, batches = recipe.prune.batch_size, recipe.validate_.max_length, []
        for start in range(0, len(data.texts), size):
            batch = dict(ckpt.tokenizer(data.texts[start:start + size], padding=True, truncation=True,
                                        max_length=max_length, return_tensors="pt"))
            if data.labels is not None:
                batch["labels"] = torch.tensor(data.labels[start:start + size])
            batches.append(batch)
        return batches

    def package_files(self, ctx: Any, variant: Path, out: Path) -> dict[str, str]:
        """Extra files a device runtime needs in package/ ({role: file name}); e.g. an on-device LLM runtime's config."""
        return {}

    def check_package_files(self, ctx: Any, out: Path, files: dict[str, str]) -> dict[str, Any]:
        """Checks of the `package_files` in `out` by the runtime they are for ({check name: result}: the package
        section's `runtime_checks`)."""
        return {}

    def package_check(self, ctx: Any, path: Path, baseline: Scored) -> dict[str, Any]:
        """Score a packaged (ORT-format) model on this host's CPU: {"metrics": ..., "open": what the evaluation times,
        or None when it is not timed here}."""
        raise NotImplementedError


def check_head(config: PretrainedConfig, source: str, supported: Any, head_suffix: str, use: str, fix: str,
               saved_as: str) -> None:
    """The checkpoint's architecture can carry the task (`supported`: transformers' model-type mapping for it), and a
    warning when it was saved without the task's head (`head_suffix`), which transformers then initialises randomly."""
    from edge_compress.compress.console import warn
    from edge_compress.compress.errors import CompressError

    if config.model_type not in supported:
        raise CompressError(f"{source} is a '{config.model_type}' model, which transformers cannot use for {use}", fix)
    archs = config.architectures or []
    if archs and not any(a.endswith(head_suffix) for a in archs):
        warn(f"{source} was saved as {archs[0]}, not {saved_as} will be randomly initialised unless the checkpoint holds one")
