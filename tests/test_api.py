"""The Python API: the README's example runs as written (paths swapped for a tiny model), a recipe written by a run
re-runs it with no other input, and the CLI shortcuts (--precision, --device, --opset, --no-optimize) reach the recipe."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import FAST_RECIPE
from edge_compress.compress.cli import app
from typer.testing import CliRunner

import edge_compress

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("### Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_python_example_runs(tiny_bert, data_dir, tmp_path, monkeypatch, one_torch_thread):
    code = _readme_example()
    placeholder = 'checkpoint, eval_csv = "my-finetuned-classifier", "eval.csv"'
    assert placeholder in code, "the README example's first line changed: update this test's substitution"
    code = code.replace(placeholder, f"checkpoint, eval_csv = {str(tiny_bert)!r}, {str(data_dir / 'eval.csv')!r}")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(README), "exec"), scope)  # noqa: S102  (the README's own example, run as documented)
    report = scope["report"]
    assert isinstance(report, edge_compress.Report) and report.task == "text-classification"
    assert {v.precision for v in report.variants} <= {"fp32", "int8"}  # precisions: [int8] kept int4/fp16 out
    assert any(v.precision == "int8" and v.ok for v in report.variants)
    on_disk = json.loads((tmp_path / "runs" / "api" / "report.json").read_text())
    assert report.selected_name == on_disk["selected"]
    assert [v.name for v in scope["again"].variants] == [v["name"] for v in on_disk["variants"]]


def test_run_refuses_half_given_inputs(tmp_path):
    with pytest.raises(edge_compress.CompressError, match="both model and eval_data"):
        edge_compress.run("model-only", out=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_load_report_names_the_fix(tmp_path):
    with pytest.raises(edge_compress.CompressError) as err:
        edge_compress.load_report(tmp_path)
    assert "compress run" in err.value.hint


def test_cli_shortcuts_reach_the_recipe(tiny_bert, data_dir, tmp_path, one_torch_thread):
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST_RECIPE)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(tiny_bert), "--out", str(out), "--eval-data", str(data_dir / "eval.csv"),
                                      "--recipe", str(recipe), "--precision", "int8", "--device", "cpu", "--no-optimize"])
    assert result.exit_code in (0, 3), result.output
    report = json.loads((out / "report.json").read_text())
    names = [v["name"] for v in report["variants"]]
    assert "onnx-fp32-optimized" not in names and "onnx-int8-dynamic" in names
    written = edge_compress.Recipe.model_validate(__import__("yaml").safe_load((out / "recipe.yaml").read_text()))
    assert written.precisions == ["int8"] and written.optimize.enabled is False and written.targets == ["cpu"]
    # the written recipe alone repeats the run: no MODEL, no --eval-data
    again = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "again"), "--recipe", str(out / "recipe.yaml")])
    assert again.exit_code in (0, 3), again.output
    assert [v["name"] for v in json.loads((tmp_path / "again" / "report.json").read_text())["variants"]] == names


@pytest.mark.parametrize("args, message", [
    (["--out", "o"], "no MODEL given"),
    (["m", "--out", "o"], "MODEL and --eval-data go together"),
    (["m", "--out", "o", "--eval-data", "e.csv", "--target", "cpu", "--device", "cpu"], "--target and --device"),
    (["m", "--out", "o", "--eval-data", "e.csv", "--opset", "9"], "--opset"),
])
def test_cli_input_errors(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "o").exists()


def test_cli_search_flag_builds_the_searched_variant(tiny_bert, data_dir, tmp_path, one_torch_thread):
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(FAST_RECIPE + "search:\n  max_trials: 3\n  steps: 2\n  search_samples: 20\n  calib_samples: 4\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["run", str(tiny_bert), "--out", str(out), "--eval-data", str(data_dir / "eval.csv"),
                                      "--recipe", str(recipe), "--precision", "int8", "--search", "--executor", "inline"])
    assert result.exit_code in (0, 3), result.output
    report = json.loads((out / "report.json").read_text())
    assert "onnx-int8-searched" not in [v["name"] for v in report["variants"]]  # one searched line: the last
    searched = next(v for v in report["variants"] if v["name"] == "trimmed-onnx-int8-searched")  # --search trims
    assert searched["error"] is None, searched["error"]
    written = __import__("yaml").safe_load((out / "recipe.yaml").read_text())
    assert written["search"]["executor"] == "inline" and written["search"]["max_trials"] == 3  # the recipe's section kept
    md = (out / "report.md").read_text()
    assert "## Search: `trimmed-onnx-int8-searched`" in md and (out / "trimmed-onnx-int8-searched-sensitivity.png").stat().st_size > 1000
