"""Resume after a kill: a run SIGKILLed right after its first line of variants is finished is rerun; the rerun reuses
the pruned checkpoint, the baseline and those variants (not rebuilt: same files, same inode; QAT not trained again),
builds the rest, and its report's metrics equal an uninterrupted run's.  `--no-resume` and a changed input rebuild everything."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from edge_compress.compress.cli import app
from edge_compress.compress.run.resume import ResumeStore
from typer.testing import CliRunner

# Two lines (the checkpoint's and the pruned one), three variants each (fp32, dynamic int8, QAT); the pruned stage,
# the baseline and the first line's variants are finished when the kill comes.
RECIPE = ("validate: {latency_samples: 5, warmup: 0, batch_size: 8}\n"
          "quantize: {static: {enabled: false}}\noptimize: {enabled: false}\n"
          "prune: {head_fraction: 0.25, num_calib_batches: 2, batch_size: 8}\n"
          "qat: {max_steps: 2, batch_size: 8, calib_batches: 1}\n")
FIRST_LINE = ["variant onnx-fp32", "variant onnx-int8-dynamic", "variant onnx-int8-qat"]

# The run, killed by SIGKILL (no cleanup runs) the moment the first line's last variant's record is stored.
KILLED = textwrap.dedent("""
    import os, signal, sys
    from edge_compress.compress.run import resume
    from edge_compress.compress.cli import app
    save = resume.ResumeStore.save
    def save_then_die(self, step, value, settings=None):
        save(self, step, value, settings)
        if step == "variant onnx-int8-qat":
            os.kill(os.getpid(), signal.SIGKILL)
    resume.ResumeStore.save = save_then_die
    app(sys.argv[1:], prog_name="compress")
    """)

# Timing-derived figures differ between any two runs; every other metric must be equal.
TIMED = ("per_second", "latency", "_ms")


def _args(model: Path, data: Path, out: Path, recipe: Path) -> list[str]:
    return ["run", str(model), "--out", str(out), "--eval-data", str(data / "eval.csv"), "--recipe", str(recipe),
            "--threads", "1"]


def _scores(report: dict) -> dict[str, dict[str, float]]:
    models = [report["baseline"], *report["variants"]]
    return {m["name"]: {k: v for k, v in m["metrics"].items() if not any(t in k for t in TIMED)} for m in models}


@pytest.fixture(scope="module")
def recipe_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "recipe.yaml"
    path.write_text(RECIPE)
    return path


def test_a_run_killed_after_its_first_variant_resumes_from_there(tiny_bert, data_dir, recipe_file, tmp_path):
    out = tmp_path / "o"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    killed = subprocess.run([sys.executable, "-c", KILLED, *_args(tiny_bert, data_dir, out, recipe_file)], check=False, env=env,
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (staging,) = [p for p in tmp_path.iterdir() if p.name.startswith(".o.partial-")]
    first = (staging / "variants" / "onnx-fp32" / "model.onnx").stat()
    assert not (staging / "variants" / "pruned-onnx-fp32").exists() and not out.exists()
    (staging / "variants" / "onnx-int8-static").mkdir()   # what an earlier plan built: not in this run's report
    (staging / "report.json").write_text("{}")

    rerun = CliRunner().invoke(app, _args(tiny_bert, data_dir, out, recipe_file))
    assert rerun.exit_code == 0, rerun.output
    report = json.loads((out / "report.json").read_text())
    assert report["resume"]["reused"] == ["pruned", "baseline", *FIRST_LINE]
    built = [line.removeprefix("• building ") for line in rerun.output.splitlines() if line.startswith("• building ")]
    assert built == ["pruned-onnx-fp32", "pruned-onnx-int8-dynamic", "pruned-onnx-int8-qat"], rerun.output
    kept = (out / "variants" / "onnx-fp32" / "model.onnx").stat()
    assert (kept.st_ino, kept.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)  # the killed run's file, not rebuilt
    assert not (out / ".resume").exists() and not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
    assert sorted(p.name for p in (out / "variants").iterdir()) == sorted(v["name"] for v in report["variants"])

    fresh = CliRunner().invoke(app, [*_args(tiny_bert, data_dir, tmp_path / "fresh", recipe_file), "--no-resume"])
    assert fresh.exit_code == 0, fresh.output
    uninterrupted = json.loads((tmp_path / "fresh" / "report.json").read_text())
    assert "resume" not in uninterrupted
    assert _scores(report) == _scores(uninterrupted)
    assert len(_scores(report)) == 7  # the baseline and both lines' three variants


def test_no_resume_removes_the_kept_staging_and_builds_again(tmp_path):
    from edge_compress.compress.outputs import RESUME_DIR, staged

    out = tmp_path / "o"
    with pytest.raises(KeyboardInterrupt), staged(out, force=False, resume=True) as stage:
        (stage / RESUME_DIR).mkdir(mode=0o700)
        (stage / "variants").mkdir()
        raise KeyboardInterrupt  # Ctrl-C: kept for the next run
    assert (stage / RESUME_DIR).is_dir()
    with staged(out, force=False, resume=True) as again:
        assert again == stage  # adopted
    assert (out / "variants").is_dir() and not (out / RESUME_DIR).exists()

    with pytest.raises(KeyboardInterrupt), staged(tmp_path / "p", force=False, resume=True) as stage:
        (stage / RESUME_DIR).mkdir(mode=0o700)
        raise KeyboardInterrupt
    with staged(tmp_path / "p", force=False, resume=False) as other:
        assert other != stage and not stage.exists()  # --no-resume: removed, a new staging folder


def test_a_group_writable_record_folder_is_not_adopted(tmp_path):
    from edge_compress.compress.outputs import RESUME_DIR, staged

    planted = tmp_path / ".o.partial-planted"
    (planted / RESUME_DIR).mkdir(parents=True)
    os.chmod(planted / RESUME_DIR, 0o777)
    with staged(tmp_path / "o", force=False, resume=True) as stage:
        assert stage != planted
    assert not planted.exists()  # removed as any stale staging folder


def test_a_record_is_reused_only_for_the_same_inputs(tmp_path):
    store = ResumeStore(tmp_path, "inputs-a")
    store.save("variant x", {"accuracy": 1.0}, {"bits": 8})
    assert store.load("variant x", {"bits": 8}) == {"accuracy": 1.0}
    assert store.load("variant x", {"bits": 4}) is None              # the step's own settings changed
    assert ResumeStore(tmp_path, "inputs-b").load("variant x", {"bits": 8}) is None   # checkpoint/data/recipe changed
    assert ResumeStore(tmp_path, "inputs-a", enabled=False).load("variant x", {"bits": 8}) is None
    assert store.reused == ["variant x"]


def test_a_qat_trained_model_is_kept_and_reloaded_instead_of_trained_again(tiny_bert, tmp_path, monkeypatch):
    import edge_compress.compress.distill
    import torch
    from conftest import make_texts
    from edge_compress.compress.qat import QATConfig, quantization_aware_train
    from edge_compress.compress.run.resume import activated
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_bert).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = [t for t, _ in make_texts(16)]
    config = QATConfig(max_steps=2, batch_size=8, calib_batches=1)
    store = ResumeStore(tmp_path, "inputs")
    with activated(store, "variant onnx-int8-qat"):
        trained, moved = quantization_aware_train(model, tokenizer, texts, None, config)
    monkeypatch.setattr(edge_compress.compress.distill, "distill", lambda *a, **k: pytest.fail("trained again"))
    with activated(ResumeStore(tmp_path, "inputs"), "variant onnx-int8-qat"):
        again, moved_again = quantization_aware_train(model, tokenizer, texts, None, config)
    assert moved_again == moved
    for (name, a), b in zip(trained.state_dict().items(), again.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(pytest.fail.Exception), activated(ResumeStore(tmp_path, "inputs"), "variant pruned-onnx-int8-qat"):
        quantization_aware_train(model, tokenizer, texts, None, config)  # another line's QAT: its own checkpoint


def test_resume_is_off_under_a_distributed_launch(monkeypatch):
    """Every process must train the same steps: one that reused a trained model would leave the others waiting."""
    from types import SimpleNamespace

    from edge_compress.compress.run.resume import wanted

    assert wanted(SimpleNamespace(resume=True)) and not wanted(SimpleNamespace(resume=False))
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not wanted(SimpleNamespace(resume=True))
