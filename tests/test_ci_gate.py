"""README's CI gate commands, read from the README itself and run on real reports: one with a selection passes, one
without fails (a gate that fails on every report, or passes on every report, is caught here)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_gates() -> tuple[str, str]:
    lines = README.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("A CI gate:"))
    jq, python = re.findall(r"`([^`]+)`", " ".join(lines[at:at + 2]))[:2]
    return jq, python


@pytest.fixture(scope="module")
def reports(tiny_bert, data_dir, tmp_path_factory):
    """A real report (fp32 + dynamic int8), and the same report with the selection removed."""
    from typer.testing import CliRunner

    from compress.cli import app

    tmp = tmp_path_factory.mktemp("gate")
    recipe = tmp / "r.yaml"
    recipe.write_text("validate: {latency_samples: 5, warmup: 0, batch_size: 8}\nquantize: {static: {enabled: false}}\n"
                      "optimize: {enabled: false}\n")
    out = tmp / "out"
    result = CliRunner().invoke(app, ["run", str(tiny_bert), "--out", str(out), "--eval-data", str(data_dir / "eval.csv"),
                                      "--recipe", str(recipe), "--threads", "1", "--max-accuracy-drop", "100"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["selected"] is not None  # a budget of 100 points: something is selected
    none = tmp / "none.json"
    none.write_text(json.dumps({**report, "selected": None}))
    return out / "report.json", none, report


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
def test_readme_jq_gate_passes_a_selection_and_fails_none(reports):
    selected, none, _ = reports
    jq, _ = readme_gates()
    command = jq.split()
    assert command[:2] == ["jq", "-e"] and command[-1] == "report.json", jq
    program = re.search(r"'(.*)'", jq).group(1)
    ok = subprocess.run(["jq", "-e", program, str(selected)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and ok.stdout.strip() == "true", ok
    refused = subprocess.run(["jq", "-e", program, str(none)], capture_output=True, text=True, check=False)
    assert refused.returncode != 0, refused


def test_readme_python_gate_reads_the_report(reports):
    selected, none, _ = reports
    _, python = readme_gates()
    r = json.loads(selected.read_text())
    speedup = next(v for v in r["variants"] if v["name"] == r["selected"])["delta"]["speedup"]
    assert eval(python, {"next": next, "r": r}) == (speedup >= 3)
    assert not eval(python, {"next": next, "r": json.loads(none.read_text())})
