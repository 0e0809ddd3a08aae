"""The command line's contract: one default per setting, --help that shows it, --version, exit statuses, the CI gate."""
import dataclasses
import json
import re
import shlex
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest
from edge_compress.compress.cli import app
from edge_compress.compress.distill import DistillConfig
from edge_compress.compress.prune.config import PruneConfig
from edge_compress.compress.qat.train import QATConfig
from edge_compress.compress.recipe import Recipe, default_of
from typer.testing import CliRunner

README = Path(__file__).resolve().parents[1] / "README.md"


def invoke(*args, **kwargs):
    return CliRunner().invoke(app, [*map(str, args)], **kwargs)


def help_defaults(*command: str) -> dict[str, str]:
    """`--flag` -> the text of its `[default: ...]` in `compress COMMAND --help` (rendered wide, so one line each)."""
    result = invoke(*command, "--help", env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"})
    assert result.exit_code == 0, result.output
    found = {}
    for line in result.output.splitlines():
        flag = re.search(r"(--[a-z][a-z-]+)", line)
        default = re.search(r"\[default: \(?([^)\]]*)\)?\]", line)
        if flag and default:
            found[flag.group(1)] = default.group(1)
    return found


def library_default(cls, name: str):
    return {f.name: f.default for f in dataclasses.fields(cls)}[name]


# (command, flag, recipe path, library class or None)
SETTINGS = [
    ("run", "--max-accuracy-drop", "max_accuracy_drop", None),
    ("run", "--calib-method", "quantize.static.calibration_method", None),
    ("run", "--task", "task", None),
    ("run", "--seed", "seed", DistillConfig),
    ("prune", "--calib-batches", "prune.num_calib_batches", PruneConfig),
    ("qat", "--epochs", "qat.epochs", QATConfig),
    ("qat", "--max-steps", "qat.max_steps", QATConfig),
    ("qat", "--learning-rate", "qat.learning_rate", QATConfig),
    ("qat", "--batch-size", "qat.batch_size", QATConfig),
    ("qat", "--label-weight", "qat.label_weight", QATConfig),
    ("qat", "--seed", "seed", QATConfig),
]


@pytest.mark.parametrize("command, flag, path, library", SETTINGS, ids=[f"{c} {f}" for c, f, _, _ in SETTINGS])
def test_recipe_library_and_help_defaults_agree(command, flag, path, library):
    recipe_default = default_of(path)
    if library is not None:
        assert library_default(library, path.split(".")[-1]) == recipe_default
    shown = help_defaults(command)
    assert flag in shown, f"{flag} shows no [default: ...] in `compress {command} --help`"
    assert shown[flag] == str(recipe_default)


def test_recipe_sections_are_the_library_configs():
    """One definition per setting: the recipe's sections are (subclasses of) the method's own config classes."""
    fields = Recipe.model_fields
    assert issubclass(fields["prune"].annotation.__args__[0], PruneConfig)
    assert issubclass(fields["qat"].annotation.__args__[0], QATConfig)
    assert issubclass(fields["distill"].annotation.__args__[0], DistillConfig)
    prune = Recipe.model_validate({"prune": {"head_fraction": 0.5}}).prune
    assert prune.num_calib_batches == library_default(PruneConfig, "num_calib_batches")


def test_help_keeps_brackets_and_defaults():
    text = invoke("run", "--help", env={"COLUMNS": "400"}).output
    assert "name[:config[:split]]" in text
    assert "[default: (1.0)]" in text and "[default: (all cores, at most 4)]" in text
    assert "minmax|entropy|percentile" in text  # --calib-method is a choice


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"edge-compress {version('edge-compress')}"


def test_unknown_choice_is_a_usage_error(tiny_bert, data_dir, tmp_path):
    result = invoke("run", tiny_bert, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv", "--calib-method", "magic")
    assert result.exit_code == 2 and "magic" in result.output


def test_quiet_and_verbose_contradict():
    result = invoke("--quiet", "--verbose", "run", "--help")
    assert result.exit_code == 2 and "contradict" in result.output


def test_quiet_hides_progress_but_not_errors(tiny_bert, tmp_path):
    result = invoke("--quiet", "run", tiny_bert, "--out", tmp_path / "o", "--eval-data", tmp_path / "missing.csv")
    assert result.exit_code == 2 and "error:" in result.output and "loading checkpoint" not in result.output


# ---- exit status 3 and the documented CI gate ------------------------------------------------------------------

QUICK = ("validate: {latency_samples: 5, warmup: 0, batch_size: 4}\n"
         "quantize: {static: {enabled: false}}\noptimize: {enabled: false}\n")


@pytest.fixture(scope="module")
def quick_run(tiny_bert, data_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("cli")
    recipe = work / "r.yaml"
    recipe.write_text(QUICK)
    out = work / "out"
    result = invoke("run", tiny_bert, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", recipe, "--threads", "1")
    assert result.exit_code == 0, result.output
    return out


def test_no_qualifying_variant_exits_3_and_keeps_the_report(tiny_bert, data_dir, tmp_path, monkeypatch):
    """The CLI's side of the contract: whatever the pipeline selected is read back from report.json."""
    from edge_compress.compress.run import pipeline

    def run_without_selection(options, recipe):
        options.out.mkdir()
        (options.out / "report.json").write_text(json.dumps({"selected": None, "selection_reason": "no variant stays within 1 points"}))

    monkeypatch.setattr(pipeline, "run", run_without_selection)
    out = tmp_path / "o"
    result = invoke("run", tiny_bert, "--out", out, "--eval-data", data_dir / "eval.csv")
    assert result.exit_code == 3, result.output
    assert "no variant qualified: no variant stays within 1 points" in " ".join(result.output.split()) and "fix:" in result.output
    assert json.loads((out / "report.json").read_text())["selected"] is None


def readme_gates() -> dict[str, str]:
    """The gate commands exactly as README's "CI gate" section documents them."""
    section = README.read_text().split("### CI gate", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.splitlines() if line and not line.startswith("#")]
    return {line.split()[0]: line for line in commands}


def gate_exit(command: str, report: Path) -> int:
    line = command.replace("runs/bert/report.json", shlex.quote(str(report)))
    return subprocess.run(line, shell=True, capture_output=True, text=True, timeout=60, check=False).returncode


@pytest.mark.parametrize("tool", ["python", "jq"])
def test_documented_gate_on_a_report_the_suite_produced(quick_run, tmp_path, tool):
    if tool == "jq" and shutil.which("jq") is None:
        pytest.skip("jq is not installed (the Python gate needs nothing else)")
    command = readme_gates()[tool]
    report = json.loads((quick_run / "report.json").read_text())
    assert report["selected"] is not None
    selected = next(v for v in report["variants"] if v["name"] == report["selected"])
    for speedup, expected in ((3.5, 0), (2.0, 1)):
        selected["delta"]["speedup"] = speedup
        (tmp_path / "report.json").write_text(json.dumps(report))
        assert gate_exit(command, tmp_path / "report.json") == expected, (tool, speedup)
    report["selected"] = None
    (tmp_path / "report.json").write_text(json.dumps(report))
    assert gate_exit(command, tmp_path / "report.json") == 1
    assert gate_exit(command, quick_run / "report.json") in (0, 1)  # the untouched report parses and gates


def test_one_seed_reaches_every_stage_and_a_flag_moves_it():
    from edge_compress.compress.errors import CompressError
    from edge_compress.compress.recipe import validate_recipe

    recipe = validate_recipe({"seed": 5, "qat": {"epochs": 1}, "prune": {"head_fraction": 0.5}, "distill": {"epochs": 1}}, "r.yaml")
    assert recipe.qat.seed == recipe.distill.seed == 5
    moved = recipe.with_overrides({"seed": 7}, {"seed": "--seed"})
    assert moved.qat.seed == moved.distill.seed == 7
    with pytest.raises(CompressError, match="set seed once"):
        validate_recipe({"seed": 5, "qat": {"seed": 3}}, "r.yaml")


def test_log_level_goes_through_the_libraries_own_controls(monkeypatch):
    import onnxruntime
    from edge_compress.compress import console
    from transformers.utils import logging as hf_logging

    monkeypatch.setattr(console, "_level", {"own": console.LEVELS["info"]})
    monkeypatch.setenv("TRANSFORMERS_VERBOSITY", "warning")
    previous = hf_logging.get_verbosity()
    try:
        assert invoke("--log-level", "error", "run", "--help").exit_code == 0
        assert hf_logging.get_verbosity() == 40 and console._level["own"] == 40
    finally:
        hf_logging.set_verbosity(previous)
        onnxruntime.set_default_logger_severity(2)


def test_progress_on_a_non_terminal_is_plain_lines_with_durations(capsys):
    from edge_compress.compress.console import progress

    with progress() as bar:
        task = bar.add_task("model: accuracy", total=3)
        for _ in range(3):
            bar.advance(task)
        bar.add_task("model: latency", total=None)
    lines = capsys.readouterr().err.splitlines()
    assert any(re.search(r"model: accuracy 3/3 in \d+\.\d s", line) for line in lines), lines
    assert any(re.search(r"model: latency in \d+\.\d s", line) for line in lines), lines
    assert not any("\r" in line or "\x1b" in line for line in lines)


def test_help_and_completion_do_not_import_torch():
    """`--help`, `--version` and every shell-completion keystroke import the CLI: it must stay light."""
    import sys

    code = "import sys, compress.cli; sys.exit(int('torch' in sys.modules or 'transformers' in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], timeout=120, check=False).returncode == 0
