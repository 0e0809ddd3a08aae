"""The recipe: what to build and how to judge it.  Defaults work with no recipe at all.

A recipe is YAML validated by these pydantic models; the resolved recipe is
written to `OUT/recipe.yaml`, so the output folder alone says what was done.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from compress.errors import CompressError
from compress.tasks.causal_lm.spec import LMSpec
from compress.tasks.question_answering.spec import QASpec


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExportSpec(Strict):
    opset: int | None = Field(None, description="ONNX opset; None lets optimum choose per architecture")
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


class PruneSpec(Strict):
    """Structured pruning (compress.prune): fractions to remove and/or budgets to keep."""
    head_fraction: float | None = Field(None, description="fraction of all attention heads to remove")
    ffn_fraction: float | None = Field(None, description="fraction of all FFN neurons to remove")
    flops_budget: float | None = Field(None, description="fraction of FLOPs to keep")
    params_budget: float | None = Field(None, description="fraction of parameters to keep")
    prune_layers: bool = False
    mask_rearrange: bool = True
    mask_tuning: bool = True
    num_calib_batches: int = Field(16, ge=1)
    batch_size: int = Field(16, ge=1)

    def to_config(self):
        """The library config (validated: bad targets fail here, before any work)."""
        from compress.prune import PruneConfig

        return PruneConfig(**self.model_dump(exclude={"batch_size"}))


class DistillSpec(Strict):
    """Recovery of the pruned model by distillation from the float model (compress.distill)."""
    epochs: float = Field(3.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(5e-5, gt=0)
    lr_scheduler_type: str = "linear"
    batch_size: int = Field(16, ge=1)
    temperature: float = Field(2.0, gt=0)
    hidden_weight: float = Field(0.0, ge=0)
    label_weight: float = Field(0.0, ge=0)

    def to_config(self):
        from compress.distill import DistillConfig

        return DistillConfig(**self.model_dump())


class QATSpec(Strict):
    """Quantization-aware training (compress.qat): int8 fake quantization, ranges calibrated then learned,
    trained by distillation from the float model; adds an onnx-int8-qat variant to each line."""
    epochs: float = Field(2.0, gt=0)
    max_steps: int = -1
    learning_rate: float = Field(2e-5, gt=0)
    batch_size: int = Field(16, ge=1)
    temperature: float = Field(2.0, gt=0)
    label_weight: float = Field(0.0, ge=0, description="weight of the labels' cross-entropy beside the distillation loss")
    calib_batches: int = Field(16, ge=1, description="batches that set the initial activation ranges")
    percentile: float = Field(99.99, gt=90, le=100, description="initial activation range: this percentile of calibration values")

    def to_config(self, preset):
        from compress.qat import QATConfig

        return QATConfig(activation_type=preset.activation_type, reduce_range=preset.reduce_range, **self.model_dump())


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


class Recipe(Strict):
    task: str = "text-classification"
    max_accuracy_drop: float = Field(1.0, ge=0, description="points of the primary metric a variant may lose")
    prune: PruneSpec | None = None
    distill: DistillSpec | None = None
    qat: QATSpec | None = None
    export: ExportSpec = ExportSpec()
    lm: LMSpec = Field(LMSpec(), description="causal-lm task only: evaluation, calibration and variants")
    qa: QASpec = Field(QASpec(), description="question-answering task only: columns, windows, post-processing, timing")
    optimize: OptimizeSpec = OptimizeSpec()
    quantize: QuantizeSpec = QuantizeSpec()
    validate_: ValidateSpec = Field(ValidateSpec(), alias="validate")
    targets: list[str] = Field(["cpu"], description="where variants are validated: cpu, cuda, tensorrt, mobile (first decides selection)")
    package: PackageSpec = PackageSpec()

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def check(self) -> None:
        """Cross-field checks that pydantic field types cannot express."""
        if self.task == "causal-lm" and self.prune is not None:
            raise CompressError("pruning is implemented for text classifiers only", "remove prune:/distill: from a causal-lm recipe")
        if self.task == "causal-lm" and self.qat is not None:
            raise CompressError("QAT is implemented for text classifiers only", "remove qat: from a causal-lm recipe")
        from compress.run.targets import parse_targets

        self.targets = parse_targets(",".join(self.targets))
        if self.prune is not None:
            self.prune.to_config()
        if self.distill is not None:
            if self.prune is None:
                raise CompressError("the recipe has a distill stage but no prune stage", "add a prune: section, or remove distill:")
            self.distill.to_config()

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(by_alias=True), sort_keys=False)


def load_recipe(path: str | None) -> Recipe:
    if path is None:
        return Recipe()
    file = Path(path)
    if not file.exists():
        raise CompressError(f"recipe not found: {path}", "check the path, or leave --recipe out to use the defaults")
    try:
        data = yaml.safe_load(file.read_text()) or {}
        recipe = Recipe.model_validate(data)
        recipe.check()
        return recipe
    except yaml.YAMLError as err:
        raise CompressError(f"{path} is not valid YAML: {err}", "fix the YAML syntax") from err
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise CompressError(f"{path} is not a valid recipe: {problems}", "see `compress run --help` and README's recipe section") from err
