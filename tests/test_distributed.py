"""QAT under a distributed launcher: two CPU processes (gloo) train one model together and write ONE int8 model,
which scores within noise of the single-process run's.

`accelerate launch --multi_gpu --num_processes 2` is what starts two processes on a machine without a GPU:
accelerate 1.x's `--cpu --num_processes 2` starts one (multi-CPU needs an MPI hostfile), so it cannot show this.
The GPUs are hidden, so the processes join a gloo group on any machine.
"""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from edge_compress.compress.cli import app
from edge_compress.compress.report.noise import accuracy_noise
from typer.testing import CliRunner

pytestmark = pytest.mark.slow

STEPS = ["--max-steps", "6", "--batch-size", "8"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _correct(folder: Path, eval_csv: Path) -> np.ndarray:
    """Per-text correctness of the int8 folder on the eval file, one text at a time (how it ships)."""
    import onnxruntime as ort
    from edge_compress.compress.data import load_text_data
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(folder)
    data = load_text_data(str(eval_csv), config.label2id, config.num_labels)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    predictions = [int(np.argmax(session.run(["logits"], {k: v for k, v in tokenizer([text], return_tensors="np").items()
                                                          if k in names})[0])) for text in data.texts]
    return np.asarray(predictions) == np.asarray(data.labels)


def test_qat_under_two_processes_writes_one_int8_model_that_scores_like_one_process(tiny_bert, data_dir, tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    args = ["qat", str(tiny_bert), "--data", str(data_dir / "train.csv"), *STEPS]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    scratch_before = set(Path(tempfile.gettempdir()).glob("edge-compress-rank*"))
    launched = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                               "--main_process_port", str(_free_port()), "-m", "edge_compress", *args, "--out", str(two)],
                              check=False, env=env, capture_output=True, text=True, timeout=900)
    assert launched.returncode == 0, launched.stderr[-4000:]
    single = CliRunner().invoke(app, [*args, "--out", str(one)])
    assert single.exit_code == 0, single.output

    # the two processes trained together: 6 steps of 2 x 4 texts are 0.6 of 80 texts, as in one process of 8
    epochs = [float(e) for e in re.findall(r"'epoch': '?([0-9.]+)", launched.stdout + launched.stderr)]
    assert epochs == [0.6], launched.stdout[-2000:]
    report = json.loads((two / "qat_report.json").read_text())
    assert report["processes"] == 2 and report["runtime_graph"]["int8_ops"]

    # one result: one folder with one valid int8 graph; nothing else beside it, no scratch folder left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]
    assert sorted(p.name for p in two.glob("*.onnx")) == ["model.onnx"]
    onnx.checker.check_model(str(two / "model.onnx"))
    assert set(Path(tempfile.gettempdir()).glob("edge-compress-rank*")) == scratch_before

    correct_two, correct_one = _correct(two, data_dir / "eval.csv"), _correct(one, data_dir / "eval.csv")
    noise = accuracy_noise(correct_two, correct_one)
    assert noise.within_noise, noise
