"""Output safety: --out never destroys inputs or foreign files, one run per --out, and killed runs leave nothing behind."""
import errno
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import onnxruntime
import pytest
from edge_compress.compress.cli import app
from edge_compress.compress.errors import CompressError
from edge_compress.compress.outputs import MARKER, _umask, check_target, lock_path, output_lock, staged
from typer.testing import CliRunner

FAST_ONLY_FP32 = ("validate: {latency_samples: 5, warmup: 0, batch_size: 4}\n"
                  "quantize: {dynamic: {enabled: false}, static: {enabled: false}}\noptimize: {enabled: false}\n")


def invoke(*args):
    return CliRunner().invoke(app, [*map(str, args)])


def expect_error(result, *phrases, code=2):
    assert result.exit_code == code, result.output
    text = " ".join(result.output.split())
    for phrase in phrases:
        assert phrase in text, text
    assert "error:" in text and "fix:" in text, text


def tree_digest(folder):
    """Every file's relative path and bytes: equal digests mean byte-identical folders."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def ckpt(tiny_bert, tmp_path):
    return shutil.copytree(tiny_bert, tmp_path / "ckpt")


@pytest.fixture
def quick_recipe(tmp_path):
    path = tmp_path / "quick.yaml"
    path.write_text(FAST_ONLY_FP32)
    return path


# ---- --out against the inputs, with and without --force --------------------------------------------------------

@pytest.mark.parametrize("force", [False, True])
def test_out_is_the_model_folder(ckpt, data_dir, force):
    before = tree_digest(ckpt)
    expect_error(invoke("run", ckpt, "--out", ckpt, "--eval-data", data_dir / "eval.csv", *(["--force"] if force else [])),
                 "is the model folder")
    assert tree_digest(ckpt) == before


def test_out_inside_the_model_folder(ckpt, data_dir):
    expect_error(invoke("run", ckpt, "--out", ckpt / "runs", "--eval-data", data_dir / "eval.csv", "--force"),
                 "lies inside the model folder")
    assert not (ckpt / "runs").exists()


def test_out_containing_the_model_folder(ckpt, data_dir, tmp_path):
    (tmp_path / MARKER).write_text("{}")  # even a folder that looks like an earlier result
    expect_error(invoke("run", ckpt, "--out", tmp_path, "--eval-data", data_dir / "eval.csv", "--force"), "contains the model folder")
    assert ckpt.exists()


def test_out_containing_the_eval_file(ckpt, tmp_path, data_dir):
    data = tmp_path / "results" / "eval.csv"
    data.parent.mkdir()
    shutil.copy(data_dir / "eval.csv", data)
    (data.parent / MARKER).write_text("{}")
    expect_error(invoke("run", ckpt, "--out", data.parent, "--eval-data", data, "--force"), "contains the input file")
    assert data.exists()


def test_out_is_the_recipe_file(ckpt, data_dir, quick_recipe):
    expect_error(invoke("run", ckpt, "--out", quick_recipe, "--eval-data", data_dir / "eval.csv", "--recipe", quick_recipe, "--force"),
                 "is the input file")
    assert quick_recipe.read_text() == FAST_ONLY_FP32


def test_out_containing_the_calibration_file(ckpt, data_dir, tmp_path):
    calib = tmp_path / "o" / "train.csv"
    calib.parent.mkdir()
    shutil.copy(data_dir / "train.csv", calib)
    expect_error(invoke("run", ckpt, "--out", calib.parent, "--eval-data", data_dir / "eval.csv", "--calib-data", calib, "--force"),
                 "contains the input file")


def test_out_dot_force_is_refused_and_leaves_nothing(ckpt, data_dir, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.txt").write_text("mine")
    monkeypatch.chdir(work)
    expect_error(invoke("run", ckpt, "--out", ".", "--eval-data", data_dir / "eval.csv", "--force"), "is the current folder")
    assert sorted(p.name for p in work.iterdir()) == ["notes.txt"]
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name or p.name.endswith(".lock")]


def test_prune_and_qat_refuse_the_model_folder_too(ckpt, data_dir):
    before = tree_digest(ckpt)
    expect_error(invoke("prune", ckpt, "--out", ckpt, "--calib-data", data_dir / "train.csv", "--heads", "0.5", "--force"),
                 "is the model folder")
    expect_error(invoke("qat", ckpt, "--out", ckpt / "int8", "--data", data_dir / "train.csv", "--force"), "lies inside the model folder")
    assert tree_digest(ckpt) == before


# ---- what --force may replace ----------------------------------------------------------------------------------

def test_force_refuses_a_folder_compress_did_not_write(ckpt, data_dir, tmp_path):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"\xff\xd8")
    expect_error(invoke("run", ckpt, "--out", foreign, "--eval-data", data_dir / "eval.csv", "--force"),
                 "holds files that compress did not write", "holiday.jpg")
    assert (foreign / "holiday.jpg").read_bytes() == b"\xff\xd8"


def test_without_force_an_earlier_result_is_refused_with_the_force_hint(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / MARKER).write_text("{}")
    with pytest.raises(CompressError, match="earlier compress run") as info:
        check_target(out, force=False)
    assert "--force" in info.value.hint


def test_force_replaces_an_earlier_result_and_a_failing_rerun_leaves_it_byte_identical(ckpt, data_dir, tmp_path, quick_recipe,
                                                                                       monkeypatch):
    out = tmp_path / "o"
    first = invoke("run", ckpt, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", quick_recipe, "--threads", "1")
    assert first.exit_code == 0, first.output
    assert (out / MARKER).is_file() and (out / "report.json").is_file()
    before = tree_digest(out)

    def broken(*args, **kwargs):
        raise RuntimeError("simulated crash in the middle of the run")

    monkeypatch.setattr(onnxruntime.InferenceSession, "__init__", broken)  # the first ONNX session fails, mid-run
    failed = invoke("run", ckpt, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", quick_recipe, "--threads", "1", "--force")
    assert failed.exit_code != 0, failed.output
    assert tree_digest(out) == before
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name or ".old-" in p.name]

    monkeypatch.undo()
    again = invoke("run", ckpt, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", quick_recipe, "--threads", "1", "--force")
    assert again.exit_code == 0, again.output
    assert (out / MARKER).is_file() and tree_digest(out) != before  # replaced (new timings, new marker time)


# ---- one run per --out ------------------------------------------------------------------------------------------

def test_a_second_run_on_the_same_out_stops_at_once_and_names_the_holder(ckpt, data_dir, tmp_path):
    out = tmp_path / "o"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from edge_compress.compress.outputs import output_lock
        with output_lock(Path({str(out)!r}), "compress run (the first one)"):
            print("held", flush=True)
            time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        result = invoke("run", ckpt, "--out", out, "--eval-data", data_dir / "eval.csv")
        expect_error(result, "in use by another compress run", f"pid {holder.pid} on {socket.gethostname()}", "started")
        assert not out.exists()
    finally:
        holder.kill()
        holder.wait()
    with output_lock(out):  # the kernel released the killed holder's lock
        pass


def test_lock_is_reentrant_within_one_process(tmp_path):
    out = tmp_path / "o"
    with output_lock(out), staged(out, force=False) as stage:
        (stage / "x").write_text("1")
    assert (out / "x").read_text() == "1" and (out / MARKER).is_file()
    assert not lock_path(out).exists()  # removed when the run ends
    assert out.stat().st_mode & 0o777 == 0o777 & ~_umask()  # a normal folder, not mkdtemp's private 0700


def test_files_written_through_temporary_files_get_the_umask_modes(tmp_path):
    """mkstemp (atomic JSON, torch's external weights) writes 0600: a finished output has no such odd file out."""
    import tempfile

    out = tmp_path / "o"
    with staged(out, force=False) as stage:
        (stage / "sub").mkdir()
        fd, name = tempfile.mkstemp(dir=stage / "sub")
        os.close(fd)
        os.replace(name, stage / "sub" / "model.onnx.data")
    assert (out / "sub" / "model.onnx.data").stat().st_mode & 0o777 == 0o666 & ~_umask()
    assert (out / "sub").stat().st_mode & 0o777 == 0o777 & ~_umask()


# ---- leftovers of killed runs, folders that appear during a run ------------------------------------------------

def test_staging_folders_of_killed_runs_are_removed_and_reported(ckpt, data_dir, tmp_path, quick_recipe):
    out = tmp_path / "o"
    stale = tmp_path / ".o.partial-abc123"
    (stale / "variants" / "onnx-fp32").mkdir(parents=True)
    (stale / "variants" / "onnx-fp32" / "model.onnx").write_bytes(b"\0" * 1000)
    other = tmp_path / ".other.partial-x"  # another --out's staging: not ours to touch
    other.mkdir()
    result = invoke("run", ckpt, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", quick_recipe, "--threads", "1")
    assert result.exit_code == 0, result.output
    assert not stale.exists() and other.exists()
    assert "left by an interrupted run" in " ".join(result.output.split())


def test_a_sigkilled_run_leaves_staging_that_the_next_run_removes(tmp_path):
    out = tmp_path / "o"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from pathlib import Path
        from edge_compress.compress.outputs import staged
        with staged(Path({str(out)!r}), force=False) as stage:
            (stage / "big").write_bytes(b"0" * 100000)
            print("staged", flush=True)
            time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "staged"
    child.kill()
    child.wait()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".o.partial-")]
    with staged(out, force=False) as stage:
        (stage / "new").write_text("ok")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.partial-")]
    assert (out / "new").read_text() == "ok"


def test_a_folder_that_appears_during_the_run_is_not_replaced(tmp_path):
    out = tmp_path / "o"
    with pytest.raises(CompressError, match="appeared or changed while this run was working") as info, \
            staged(out, force=False) as stage:
        (stage / "report.json").write_text("{}")
        out.mkdir()
        (out / "copied-by-user.txt").write_text("precious")
    assert (out / "copied-by-user.txt").read_text() == "precious"
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("o.compress-")]
    assert len(kept) == 1 and (kept[0] / "report.json").exists() and str(kept[0]) in info.value.message


def test_a_result_swapped_for_another_folder_during_a_force_run_is_not_replaced(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    (out / MARKER).write_text("{}")
    with pytest.raises(CompressError, match="appeared or changed"), staged(out, force=True) as stage:
        (stage / "a").write_text("1")
        shutil.rmtree(out)
        out.mkdir()
        (out / "someone-elses.txt").write_text("x")
    assert (out / "someone-elses.txt").exists()


# ---- the output filesystem ---------------------------------------------------------------------------------------

def test_parent_of_out_is_a_file(ckpt, data_dir, tmp_path):
    (tmp_path / "afile").write_text("x")
    expect_error(invoke("run", ckpt, "--out", tmp_path / "afile" / "o", "--eval-data", data_dir / "eval.csv"), "is a file, not a folder")


def test_read_only_output_filesystem(ckpt, data_dir, tmp_path, monkeypatch):
    real_open = os.open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    expect_error(invoke("run", ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "read-only")


def test_disk_full_fails_the_run_with_a_clear_error_and_removes_staging(ckpt, data_dir, tmp_path, quick_recipe, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "model.onnx")

    monkeypatch.setattr(onnxruntime.InferenceSession, "__init__", full)  # the first ONNX step after the export
    out = tmp_path / "o"
    expect_error(invoke("run", ckpt, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", quick_recipe, "--threads", "1"),
                 "is full", "free some space")
    assert not out.exists() and not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_disk_full_in_a_non_fatal_variant_still_fails_the_run(ckpt, data_dir, tmp_path, monkeypatch):
    """A library that reports ENOSPC as its own error (protobuf, C++) is caught by the free-space check."""
    from edge_compress.compress import outputs
    from edge_compress.compress.quantize import ptq

    def misleading(*args, **kwargs):
        raise RuntimeError("google.protobuf.message.EncodeError: Failed to serialize proto")

    monkeypatch.setattr(ptq, "quantize_dynamic", misleading)  # only the (non-fatal) int8 dynamic variant fails
    monkeypatch.setattr(outputs, "LOW_SPACE_BYTES", 1 << 62)  # "the disk is all but full now"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("validate: {latency_samples: 5, warmup: 0, batch_size: 4}\nquantize: {static: {enabled: false}}\n"
                      "optimize: {enabled: false}\n")
    out = tmp_path / "o"
    expect_error(invoke("run", ckpt, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", recipe, "--threads", "1"), "is full")
    assert not out.exists()


def test_sigterm_removes_staging_and_releases_the_lock(tmp_path):
    """The CLI turns SIGTERM into the same cleanup as Ctrl-C."""
    import signal

    out = tmp_path / "o"
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import signal, time
        from pathlib import Path
        from edge_compress.compress.cli import _terminate
        from edge_compress.compress.outputs import staged
        signal.signal(signal.SIGTERM, _terminate)
        with staged(Path({str(out)!r}), force=False) as stage:
            (stage / "big").write_bytes(b"0" * 100000)
            print("staged", flush=True)
            time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "staged"
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 128 + signal.SIGTERM
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no staging, no lock file, no OUT


def test_a_result_moved_aside_by_a_run_killed_while_replacing_it_is_restored(tmp_path):
    out = tmp_path / "o"
    aside = tmp_path / ".o.old-4242"
    aside.mkdir()
    (aside / MARKER).write_text("{}")
    (aside / "report.json").write_text('{"selected": "onnx-fp32"}')
    with output_lock(out):
        pass
    assert (out / "report.json").read_text() == '{"selected": "onnx-fp32"}' and not aside.exists()
