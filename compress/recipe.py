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
    calibration_method: Literal["minmax", "entropy", "percentile"] = "minmax"
    percentile: float = Field(99.999, gt=90, le=100)
    num_samples: int = Field(256, ge=1, description="calibration texts (batch 1 each)")


class QuantizeSpec(Strict):
    preset: Literal["auto", "vnni", "avx2", "arm64"] = "auto"
    dynamic: DynamicSpec = DynamicSpec()
    static: StaticSpec = StaticSpec()


class ValidateSpec(Strict):
    threads: int | None = Field(None, ge=1, description="intra-op threads for every latency run (default: all cores, at most 4)")
    latency_samples: int = Field(200, ge=5, description="eval texts timed one by one at batch 1")
    warmup: int = Field(10, ge=0)
    batch_size: int = Field(32, ge=2, description="the larger batch also timed")
    max_length: int = Field(128, ge=8, description="tokens per text (longer texts are truncated)")
    max_eval_samples: int | None = Field(None, ge=1, description="evaluate on the first N texts only")


class Recipe(Strict):
    task: str = "text-classification"
    max_accuracy_drop: float = Field(1.0, ge=0, description="points of the primary metric a variant may lose")
    export: ExportSpec = ExportSpec()
    optimize: OptimizeSpec = OptimizeSpec()
    quantize: QuantizeSpec = QuantizeSpec()
    validate_: ValidateSpec = Field(ValidateSpec(), alias="validate")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

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
        return Recipe.model_validate(data)
    except yaml.YAMLError as err:
        raise CompressError(f"{path} is not valid YAML: {err}", "fix the YAML syntax") from err
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise CompressError(f"{path} is not a valid recipe: {problems}", "see `compress run --help` and README's recipe section") from err
