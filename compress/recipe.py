"""The recipe: what to build and how to judge it.  Defaults work with no recipe at all.

A recipe is YAML validated by these pydantic models; the resolved recipe is
written to `OUT/recipe.yaml`, so the output folder alone says what was done.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from edge_compress.compress.distill_config import DistillConfig
from edge_compress.compress.errors import CompressError
from edge_compress.compress.prune.config import PruneConfig
from edge_compress.compress.qat.config import QATConfig
from edge_compress.compress.search.config import SearchSpec
from edge_compress.compress.seeding import DEFAULT_SEED
from edge_compress.compress.tasks.causal_lm.spec import LMSpec
from edge_compress.compress.tasks.question_answering.spec import QASpec
from edge_compress.compress.tasks.translation.spec import TranslationSpec
from edge_compress.compress.trim.config import TrimConfig
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ExportSpec(Strict):
    opset: int | None = Field(None, ge=14, description="ONNX opset (--opset); None: 17 for single-graph exports (export.onnx_export.DEFAULT_OPSET), the exporter's own for causal LMs")
    parity_atol: float = Field(1e-3, description="max |ONNX - PyTorch| logit difference accepted after export")


class OptimizeSpec(Strict):
    enabled: bool = True
    level: int = Field(2, ge=1, le=3, description="ORT transformer-optimizer level (2: attention/LayerNorm/GELU fusions)")


class DynamicSpec(Strict):
    enabled: bool = True


class StaticSpec(Strict):
    enabled: bool = True
    # percentile 99.99 kept MiniLM/Rotten Tomatoes at +0.1 pt where minmax lost 1.2 (GELU/softmax outliers stretch minmax ranges)
    calibration_method: Literal["minmax", "entropy", "percentile"] = "percentile"
    percentile: float = Field(99.99, gt=90, le=100)
    num_samples: int = Field(256, ge=1, description="calibration texts (batch 1 each)")
    smoothquant_alpha: float | None = Field(None, ge=0, le=1, description=(
        "also build onnx-int8-static-smoothquant: activation outliers moved into the weights before static int8 "
        "(compress.quantize.smooth; decoders such as Llama, Gemma, GPT-2). 0.5 is the usual start; higher moves more"))


class QuantizeSpec(Strict):
    preset: Literal["auto", "vnni", "avx2", "arm64"] = "auto"
    dynamic: DynamicSpec = DynamicSpec()
    static: StaticSpec = StaticSpec()


class _Section:
    """What every recipe section offers the pipeline, for the sections that are a library's own config dataclass."""

    def model_dump(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class PruneSpec(PruneConfig, _Section):
    """`prune:` = `compress.prune.PruneConfig` (its defaults and checks) plus the stage's calibration batch size."""
    batch_size: Annotated[int, Field(ge=1, description="calibration texts per batch")] = 16

    def to_config(self) -> PruneConfig:
        """The library config (validated: bad targets fail here, before any work)."""
        return PruneConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(PruneConfig)})


@dataclasses.dataclass(frozen=True)
class DistillSpec(DistillConfig, _Section):
    """`distill:` = `compress.distill.DistillConfig`: recovery of the pruned model by distillation from the float model."""

    def to_config(self) -> DistillConfig:
        return DistillConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(DistillConfig)})


@dataclasses.dataclass(frozen=True)
class QATSpec(QATConfig, _Section):
    """`qat:` = `compress.qat.QATConfig`: int8 fake quantization, ranges calibrated then learned, trained by
    distillation from the float model; adds an onnx-int8-qat variant to each line."""

    def to_config(self, preset) -> QATConfig:
        """The grid comes from the run's int8 preset unless the recipe sets it."""
        settings = {f.name: getattr(self, f.name) for f in dataclasses.fields(QATConfig)}
        if settings["activation_type"] is None:
            settings["activation_type"] = preset.activation_type
        if settings["reduce_range"] is None:
            settings["reduce_range"] = preset.reduce_range
        return QATConfig(**settings)


@dataclasses.dataclass(frozen=True)
class TrimSpec(TrimConfig, _Section):
    """`trim:` = `compress.trim.TrimConfig` plus whether it is on and which texts are the corpus: adds a `trimmed-` line
    (the last line's model with its vocabulary cut to what the corpus uses plus a safety set, and its own tokenizer)."""
    enabled: bool = True
    corpus: Annotated[Literal["train", "calibration"], Field(description=(
        "texts whose tokens are kept: train (the training/calibration file, all of it) or calibration (the sampled "
        "quantize.static.num_samples texts)"))] = "train"

    def to_config(self) -> TrimConfig:
        return TrimConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrimConfig)})


class ValidateSpec(Strict):
    threads: int | None = Field(None, ge=1, description="intra-op threads for every latency run (default: all cores, at most 4)")
    latency_samples: int = Field(200, ge=5, description="eval texts timed one by one at batch 1 (in each round)")
    rounds: int = Field(3, ge=3, description="interleaved timing rounds: every model timed once per round; median and spread reported")
    warmup: int = Field(10, ge=0)
    batch_size: int = Field(32, ge=2, description="the larger batch also timed")
    max_length: int = Field(128, ge=8, description="tokens per text (longer texts are truncated)")
    max_eval_samples: int | None = Field(None, ge=1, description="evaluate on the first N texts only")


class FixedShapeSpec(Strict):
    batch: int = Field(1, ge=1, description="static batch size of the packaged model")
    sequence: int = Field(128, ge=1, description="static sequence length (texts are padded/truncated to it)")


class PackageSpec(Strict):
    """Device artefacts made from the selected variant (compress.run.package)."""
    ort_format: bool = Field(False, description="ORT-format model + reduced-operator build config (implied by target mobile)")
    fixed_shape: FixedShapeSpec | None = Field(None, description="also a fixed-shape model for NPUs/delegates")


class DataSpec(Strict):
    """Where the run's data came from; written resolved into OUT/recipe.yaml so `--recipe` alone re-runs it."""
    eval: str | None = Field(None, description="eval data: a file, or a `datasets` name[:config[:split]] (--eval-data)")
    text_column: str | None = None
    label_column: str | None = None
    calib: str | None = Field(None, description="calibration texts (--calib-data; default: train.* beside the eval file)")


class ReportSpec(Strict):
    examples: int = Field(10, ge=0, description="flipped texts (classifiers) or diverging prompts (LMs) listed per variant")


class Recipe(Strict):
    model: str | None = Field(None, description="checkpoint folder or hub id (MODEL); written resolved into OUT/recipe.yaml")
    data: DataSpec = DataSpec()
    task: str = Field("text-classification", description="text-classification or causal-lm")
    max_accuracy_drop: float = Field(1.0, ge=0, description="points of the primary metric a variant may lose")
    resume: bool = Field(True, description=(
        "a rerun after a killed or interrupted run on the same --out reuses its finished steps (baseline, variants, "
        "torch-stage checkpoints; compress.run.resume); false (--no-resume) builds everything again"))
    seed: int = Field(DEFAULT_SEED, description="seeds calibration sampling and every random choice of the torch stages (QAT, distillation)")
    precisions: list[Literal["int8", "int4", "fp16"]] | None = Field(None, description=(
        "build only variants of these precisions (--precision); the fp32 export and its fused graph are always built, "
        "every other variant starts from them. None: every precision the task and targets offer"))
    prune: PruneSpec | None = None
    distill: DistillSpec | None = None
    qat: QATSpec | None = None
    search: SearchSpec | None = Field(None, description="build the searched mixed-precision variant (compress.search)")
    trim: TrimSpec | None = None
    export: ExportSpec = ExportSpec()
    lm: LMSpec = Field(LMSpec(), description="causal-lm task only: evaluation, calibration and variants")
    qa: QASpec = Field(QASpec(), description="question-answering task only: columns, windows, post-processing, timing")
    translation: TranslationSpec = Field(TranslationSpec(), description="translation task only: columns, decoding, timing, "
                                                                       "int8 variants and their calibration")
    optimize: OptimizeSpec = OptimizeSpec()
    quantize: QuantizeSpec = QuantizeSpec()
    validate_: ValidateSpec = Field(ValidateSpec(), alias="validate")
    targets: list[str] = Field(["cpu"], description="where variants are validated: cpu, cuda, tensorrt, mobile (first decides selection)")
    package: PackageSpec = PackageSpec()
    report: ReportSpec = ReportSpec()

    model_config = ConfigDict(extra="forbid", populate_by_name=True, allow_inf_nan=False)

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str) -> str:
        from edge_compress.compress.tasks import TASK_NAMES

        if task not in TASK_NAMES:
            raise ValueError(f"unknown task '{task}': use one of {', '.join(TASK_NAMES)}")
        return task

    @model_validator(mode="after")
    def _one_seed(self) -> Recipe:
        """The seed is set once, at the top; the stages that train get it from there."""
        for name in ("qat", "distill"):
            section = getattr(self, name)
            if section is None or section.seed == self.seed:
                continue
            if section.seed != DEFAULT_SEED:
                raise ValueError(f"{name}.seed is {section.seed} but the recipe's seed is {self.seed}: set seed once, at the top")
            setattr(self, name, dataclasses.replace(section, seed=self.seed))
        return self

    def check(self) -> None:
        """Cross-field checks that pydantic field types cannot express."""
        if self.task == "causal-lm" and self.qat is not None:
            raise CompressError("QAT is implemented for text classifiers only: its learned ranges are found in the export "
                                "by each Linear's weight, and the causal-LM export packs q/k/v and gate/up into one MatMul "
                                "each, so those ranges have no tensor to land on",
                                "remove qat: from a causal-lm recipe (the LM's onnx-int8-static variant calibrates "
                                "prefill and decode ranges instead)")
        if self.search is not None and self.task not in ("text-classification", "causal-lm"):
            raise CompressError(f"search: is implemented for text-classification and causal-lm, not {self.task}",
                                "remove search: from the recipe")
        if self.task == "causal-lm" and self.trim is not None and self.trim.enabled:
            raise CompressError("vocabulary trimming is implemented for text classifiers only (a trimmed tokenizer splits "
                                "words outside the corpus into more tokens, so per-token perplexity is not comparable)",
                                "remove trim: from a causal-lm recipe")
        from edge_compress.compress.run.targets import parse_targets

        self.targets = parse_targets(",".join(self.targets))
        if self.prune is not None:
            self.prune.to_config()
        if self.trim is not None:
            self.trim.to_config()
        if self.distill is not None:
            if self.prune is None:
                raise CompressError("the recipe has a distill stage but no prune stage", "add a prune: section, or remove distill:")
            self.distill.to_config()

    def resolved(self, model: str, eval_data: str, text_column: str | None, label_column: str | None, calib: str | None,
                 threads: int, preset: str) -> Recipe:
        """This recipe with what the run actually used filled in (local paths made absolute), so that
        `compress run --recipe OUT/recipe.yaml` with no other flags runs the same thing again."""
        def where(value: str | None) -> str | None:
            return str(Path(value).expanduser().resolve()) if value and Path(value).expanduser().exists() else value

        copy = self.model_copy(deep=True)
        copy.model = where(model)
        copy.data = DataSpec(eval=where(eval_data), text_column=text_column, label_column=label_column, calib=where(calib))
        copy.validate_.threads = threads
        copy.quantize.preset = preset  # type: ignore[assignment]
        return copy

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(by_alias=True, mode="json"), sort_keys=False)

    def with_overrides(self, overrides: dict[str, Any], flags: dict[str, str] | None = None) -> Recipe:
        """A copy with `overrides` (dotted recipe path -> value; None = not given) applied and validated exactly
        as a recipe file is, so a CLI flag cannot skip a check; `flags` names the flag of each path for messages."""
        data = self.model_dump(by_alias=True, mode="json", exclude_unset=True)  # keeps "set by the user" apart from defaults
        for name in SECTIONS:  # a stage's seed is the top-level one (see _one_seed): let it follow a new --seed
            if isinstance(data.get(name), dict):
                data[name].pop("seed", None)
        for path, value in overrides.items():
            if value is None:
                continue
            *parents, leaf = path.split(".")
            node = data
            for key in parents:
                if not isinstance(node.get(key), dict):
                    node[key] = {}
                node = node[key]
            node[leaf] = value
        return validate_recipe(data, "the command line", flags or {})


SECTIONS = {"prune": PruneSpec, "distill": DistillSpec, "qat": QATSpec, "trim": TrimSpec}


def default_of(path: str) -> Any:
    """The default of a recipe field by dotted path (`validate.threads`, `qat.epochs`), also inside the sections
    that are off by default: what `--help` shows, read from the one place it is defined."""
    head, *rest = path.split(".")
    if head in SECTIONS and rest:
        return {f.name: f.default for f in dataclasses.fields(SECTIONS[head])}[rest[0]]
    node: Any = Recipe().model_dump(by_alias=True, mode="json")
    for part in path.split("."):
        node = node[part]
    return node


def load_recipe(path: str | None) -> Recipe:
    if path is None:
        return Recipe()
    file = Path(path)
    if not file.exists():
        raise CompressError(f"recipe not found: {path}", "check the path, or leave --recipe out to use the defaults")
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except yaml.YAMLError as err:
        raise CompressError(f"{path} is not valid YAML: {err}", "fix the YAML syntax") from err
    if not isinstance(data, dict):
        raise CompressError(f"{path} is not a recipe: expected a mapping of sections, got {type(data).__name__}",
                            "see README's recipe section")
    return validate_recipe(data, str(path))


def validate_recipe(data: dict, where: str, flags: dict[str, str] | None = None) -> Recipe:
    """Recipe from plain data, every problem named by its field (or, with `flags`, by the CLI flag that set it)."""
    flags = flags or {}
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(_problem(e, flags) for e in err.errors())
        hint = "see `compress run --help`" if where == "the command line" else "see `compress run --help` and README's recipe section"
        raise CompressError(f"{where} is not a valid recipe: {problems}" if where != "the command line"
                            else f"invalid option: {problems}", hint) from err
    recipe.check()
    return recipe


def _problem(error: dict, flags: dict[str, str]) -> str:
    path = ".".join(str(part) for part in error["loc"])
    name = next((flag for field, flag in flags.items() if path == field or path.startswith(field + ".")), path)
    message = error["msg"].removeprefix("Value error, ")
    if name != path and "input" in error:
        return f"{name} {error['input']!r}: {message}"
    return f"{name}: {message}"
