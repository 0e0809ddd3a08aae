"""Fault injection (monkeypatched): each README guarantee about failure is made to happen once and checked.

- the parity gate refuses a drifted export, also when only the longest eval texts drift;
- a variant that fails to build is reported, and the others are built, scored, selected from;
- a failing --force run leaves the previous OUT byte-identical;
- bad input fails before any slow work (a spy on the slow steps, not OUT's absence);
- a deployment target that errors mid-run is recorded on that variant and the run goes on.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from edge_compress.compress.cli import app
from edge_compress.compress.errors import CompressError
from typer.testing import CliRunner

FP32_ONLY = ("validate: {latency_samples: 5, warmup: 0, batch_size: 8}\nquantize: {static: {enabled: false}, "
             "dynamic: {enabled: false}}\noptimize: {enabled: false}\n")
QUICK = "validate: {latency_samples: 5, warmup: 0, batch_size: 8}\nquantize: {static: {num_samples: 8}}\noptimize: {enabled: false}\n"


def cli(*args):
    return CliRunner().invoke(app, ["run", *map(str, args)])


def recipe(tmp_path: Path, text: str, name: str = "recipe.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- the parity gate ------------------------------------------------------------------------------------------------

def _drift_on_long(run, min_len: int, amount: float):
    """An ONNX runner that is exact on short feeds and off by `amount` on feeds at least `min_len` tokens long."""
    def drifted(feed):
        out = run(feed)
        return out + amount if feed["input_ids"].shape[1] >= min_len else out
    return drifted


def test_parity_gate_checks_the_longest_batches_too(monkeypatch):
    """Length-sorted batches, shortest first: drift only in the last (longest) batch must still be refused."""
    from edge_compress.compress.run import measure
    from edge_compress.compress.tasks.text_classification.task import TextClassification

    batches = [{"input_ids": np.zeros((8, n), np.int64)} for n in (3, 4, 5, 6, 7, 8, 9, 40)]
    logits = lambda feed: np.zeros((feed["input_ids"].shape[0], 3), np.float32)
    monkeypatch.setattr(measure, "torch_runner", lambda model: logits)
    monkeypatch.setattr(measure, "onnx_runner", lambda path, threads: _drift_on_long(logits, 40, 0.5))
    ctx = SimpleNamespace(evaluation=SimpleNamespace(batches=batches), threads=1,
                          recipe=SimpleNamespace(export=SimpleNamespace(parity_atol=1e-3)))
    with pytest.raises(CompressError) as err:
        TextClassification().check_parity(ctx, None, Path("model.onnx"))
    assert "disagrees with PyTorch" in err.value.message and "5.00e-01" in err.value.message
    # and within tolerance it passes (the gate is not simply always raising)
    monkeypatch.setattr(measure, "onnx_runner", lambda path, threads: _drift_on_long(logits, 40, 1e-4))
    TextClassification().check_parity(ctx, None, Path("model.onnx"))


def test_a_drifted_fp32_export_stops_the_run(tiny_bert, data_dir, tmp_path, monkeypatch):
    """In a real run: the export drifts only on the longest eval texts; the run refuses it (exit 2) and writes no OUT."""
    from edge_compress.compress.run import measure

    real = measure.onnx_runner
    monkeypatch.setattr(measure, "onnx_runner", lambda path, threads: _drift_on_long(real(path, threads), 16, 0.1))
    out = tmp_path / "out"
    result = cli(tiny_bert, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", recipe(tmp_path, FP32_ONLY),
                 "--threads", "1")
    assert result.exit_code == 2, result.output
    assert "disagrees with PyTorch" in " ".join(result.output.split())
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --- one broken variant ---------------------------------------------------------------------------------------------

def test_a_variant_that_fails_to_build_is_reported_and_the_rest_go_on(tiny_bert, data_dir, tmp_path, monkeypatch):
    from edge_compress.compress.quantize import ptq

    def broken(*args, **kwargs):
        raise RuntimeError("injected: static quantizer crashed")

    monkeypatch.setattr(ptq, "quantize_int8_static", broken)
    out = tmp_path / "out"
    result = cli(tiny_bert, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", recipe(tmp_path, QUICK),
                 "--threads", "1")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())  # the contract (conftest) already checked it
    by_name = {v["name"]: v for v in report["variants"]}
    assert by_name["onnx-int8-static"]["error"] == "RuntimeError: injected: static quantizer crashed"
    assert not (out / "variants" / "onnx-int8-static").exists()
    assert by_name["onnx-fp32"]["error"] is None and by_name["onnx-int8-dynamic"]["error"] is None
    assert report["selected"] != "onnx-int8-static"
    assert "onnx-int8-static" in (out / "report.md").read_text()


# --- a failing --force run -----------------------------------------------------------------------------------------

def test_a_failing_force_run_leaves_the_previous_out_byte_identical(tiny_bert, data_dir, tmp_path, monkeypatch):
    from edge_compress.compress.run import pipeline

    out = tmp_path / "out"
    spec = recipe(tmp_path, FP32_ONLY)
    args = (tiny_bert, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", spec, "--threads", "1")
    assert cli(*args).exit_code == 0
    before = tree_digest(out)

    def late_failure(*a, **k):  # the last step, after every variant was built into the staging folder
        raise RuntimeError("injected: disk full while writing the report")

    monkeypatch.setattr(pipeline, "write_report", late_failure)
    result = cli(*args, "--force")
    assert result.exit_code == 1, result.output
    assert tree_digest(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "recipe.yaml"]  # no staging folder left


# --- before any work ------------------------------------------------------------------------------------------------

class SlowStepCalled(AssertionError):
    pass


@pytest.fixture
def spy(monkeypatch):
    """Every slow step of the pipeline, replaced by a spy that records the call and stops the run."""
    from edge_compress.compress.run import builder, pipeline

    calls: list[str] = []

    def stop(name):
        def called(*args, **kwargs):
            calls.append(name)
            raise SlowStepCalled(name)
        return called

    monkeypatch.setattr(pipeline, "torch_stages", stop("torch_stages"))
    monkeypatch.setattr(builder.Builder, "baseline", stop("baseline"))
    monkeypatch.setattr(builder.Builder, "build", stop("build"))
    return calls


def _bad_inputs(tmp_path: Path, data_dir: Path, tiny_bert: Path):
    from conftest import write_csv

    bad_labels = write_csv(tmp_path / "bad.csv", [("my order", "positive"), ("late", "furious")])
    return {
        "unknown target": (["--target", "cpu,npu"], "npu"),
        "bad fixed shape": (["--fixed-shape", "1x128"], "BATCH,SEQUENCE"),
        "impossible prune budget": (["--recipe", recipe(tmp_path, "prune: {flops_budget: 0.001}\n", "prune.yaml")], "flops"),
        "bad recipe field": (["--recipe", recipe(tmp_path, "quantize: {static: {calibration_method: magic}}\n", "bad.yaml")],
                             "calibration_method"),
        "labels not in label2id": (["--eval-data", bad_labels], "furious"),
    }


@pytest.mark.parametrize("case", ["unknown target", "bad fixed shape", "impossible prune budget", "bad recipe field",
                                  "labels not in label2id"])
def test_bad_input_fails_before_any_slow_step(case, spy, tiny_bert, data_dir, tmp_path):
    flags, words = _bad_inputs(tmp_path, data_dir, tiny_bert)[case]
    base = ["--eval-data", data_dir / "eval.csv"] if "--eval-data" not in flags else []
    result = cli(tiny_bert, "--out", tmp_path / "o", *base, *flags)
    assert spy == [], f"{case}: the slow step {spy} ran before the error"
    assert result.exit_code == 2, result.output
    assert words.lower() in " ".join(result.output.split()).lower()


def test_the_spy_sees_a_good_run(spy, tiny_bert, data_dir, tmp_path):
    """The spy is wired where the slow work starts: a valid run reaches it (so the test above can fail)."""
    cli(tiny_bert, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv", "--recipe", recipe(tmp_path, FP32_ONLY))
    assert spy == ["torch_stages"]


# --- a target that errors mid-run -----------------------------------------------------------------------------------

def test_a_target_that_errors_mid_run_is_recorded_and_the_run_goes_on(tiny_bert, data_dir, tmp_path, monkeypatch):
    """A CUDA stand-in (CPU provider) whose runner fails for fp16 models: that cell records the error, the rest is measured."""
    from edge_compress.export import device
    from edge_compress.export.targets import TARGETS

    monkeypatch.setitem(TARGETS, "cuda", dataclasses.replace(TARGETS["cuda"], providers=("CPUExecutionProvider",), device="cpu"))
    real = device.TargetRunner

    class Failing(real):
        def __init__(self, path, target, precision, *args, **kwargs):
            if precision == "fp16":
                raise RuntimeError("injected: no fp16 kernel for LayerNormalization")
            super().__init__(path, target, precision, *args, **kwargs)

    monkeypatch.setattr(device, "TargetRunner", Failing)
    out = tmp_path / "out"
    result = cli(tiny_bert, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", recipe(tmp_path, FP32_ONLY),
                 "--threads", "1", "--target", "cuda,cpu")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    assert by_name["onnx-fp16"]["error"] is None  # built and measured on CPU
    assert by_name["onnx-fp16"]["targets"]["cuda"] == {"error": "RuntimeError: injected: no fp16 kernel for LayerNormalization"}
    assert by_name["onnx-fp32"]["targets"]["cuda"]["latency_ms"]["rounds"] == 3
    assert report["targets"]["selection"] == "cuda" and report["selected"] == "onnx-fp32"  # the only one measured on cuda
