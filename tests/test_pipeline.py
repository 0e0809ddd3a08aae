"""`compress run` end to end on tiny random BERT and GPT-2 classifiers, invoked as a user would."""
import json
import subprocess
import sys

import numpy as np
import pytest
from edge_compress.compress.cli import app
from typer.testing import CliRunner

REPORT_KEYS = {"task", "metric", "higher_is_better", "baseline", "variants", "selected", "environment"}
ENTRY_KEYS = {"name", "path", "format", "precision", "provider", "metrics", "latency_ms", "size_bytes", "params"}
VARIANTS = ["onnx-fp32", "onnx-fp32-optimized", "onnx-int8-dynamic", "onnx-int8-static"]


def compress(*args: str):
    result = CliRunner().invoke(app, ["run", *map(str, args)])
    return result


@pytest.fixture(scope="module")
def bert_run(tiny_bert, data_dir, fast_recipe, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "bert"
    result = compress(tiny_bert, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", fast_recipe, "--threads", "1")
    assert result.exit_code == 0, result.output
    return out, tiny_bert


@pytest.fixture(scope="module")
def gpt2_run(tiny_gpt2, data_dir, fast_recipe, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "gpt2"
    result = compress(tiny_gpt2, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", fast_recipe,
                      "--calib-method", "minmax", "--threads", "1")
    assert result.exit_code == 0, result.output
    return out, tiny_gpt2


def test_report_schema(bert_run, bert_report_keys):
    bert_run, _ = bert_run
    report = json.loads((bert_run / "report.json").read_text())
    assert REPORT_KEYS <= report.keys()
    assert [v["name"] for v in report["variants"]] == VARIANTS
    for entry in [report["baseline"], *report["variants"]]:
        assert ENTRY_KEYS <= entry.keys() and bert_report_keys <= entry.keys(), entry.get("error")
        assert {"p50", "p90", "batch_size", "seq_len"} <= entry["latency_ms"].keys()
        assert {"accuracy", "macro_f1"} <= entry["metrics"].keys()
        assert entry["size_bytes"] > 0 and entry["params"] > 0
    for entry in report["variants"]:
        assert {"metric", "latency_ratio", "size_ratio"} <= entry["delta"].keys()
        assert entry["metrics"]["agreement"] >= 90  # int8 of a random tiny model may flip a near-tie
    from contract import expected_selection

    acceptable, _ = expected_selection(report)  # the README rule, recomputed from the report's own numbers
    assert report["selected"] in acceptable, (report["selected"], acceptable)
    assert report["calibration"]["source"].endswith("train.csv")  # sibling train file used by default
    assert report["environment"]["int8_preset"]["name"] in ("vnni", "avx2", "arm64")
    assert (bert_run / "report.md").read_text().count("|") > 20
    assert (bert_run / "report.png").stat().st_size > 10_000
    assert "max_accuracy_drop: 1.0" in (bert_run / "recipe.yaml").read_text()


def test_fp32_export_matches_pytorch(bert_run):
    bert_run, _ = bert_run
    report = json.loads((bert_run / "report.json").read_text())
    fp32 = report["variants"][0]
    assert fp32["metrics"]["max_abs_logit_diff"] < 1e-4
    assert fp32["metrics"]["agreement"] == 100


@pytest.mark.parametrize("fixture", ["bert_run", "gpt2_run"])
def test_int8_variants_run_integer_kernels(fixture, request):
    """Exact int8 kernel counts, derived from the model's layers (tests/expected_ops.py), per variant."""
    from expected_ops import attention_matmuls, embedding_tables, expected_float_matmuls, expected_int8_ops, int8_table_gathers

    out, ckpt = request.getfixturevalue(fixture)
    report = json.loads((out / "report.json").read_text())
    by_name = {v["name"]: v for v in report["variants"]}
    for name in ("onnx-int8-dynamic", "onnx-int8-static"):
        graph = by_name[name]["graph"]
        assert graph["int8_ops"] == expected_int8_ops(ckpt, name), (name, graph)
        assert attention_matmuls(graph) == expected_float_matmuls(ckpt, name), (name, graph)
        assert graph["float_weight_matmuls"] == 0, graph  # no Linear layer left in float
    static = out / by_name["onnx-int8-static"]["path"] / "model.onnx"
    assert int8_table_gathers(static) == embedding_tables(ckpt)  # every embedding table stored int8
    if fixture == "gpt2_run":
        return
    # static QDQ keeps attention's activation x activation MatMuls float (faster on the CPU provider); dynamic fuses them
    assert "MatMul" not in by_name["onnx-int8-dynamic"]["graph"]["float_matmul_ops"]
    assert by_name["onnx-int8-dynamic"]["size_bytes"] < by_name["onnx-fp32"]["size_bytes"] * 0.6


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_folders_load_with_exported_model_and_onnxruntime(bert_run, data_dir, variant):
    """transformers' ExportedModel reads export.json + model.onnx.data and returns the model's own output class; plain
    onnxruntime opens the same files and computes the same logits."""
    import onnxruntime as ort
    from transformers import AutoTokenizer
    from transformers.exporters import ExportedModel
    from transformers.modeling_outputs import SequenceClassifierOutput

    bert_run, _ = bert_run
    folder = bert_run / "variants" / variant
    assert (folder / "export.json").exists() and (folder / "model.onnx.data").exists()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    inputs = tokenizer(["my order is late", "a good film"], padding=True, return_tensors="pt")
    outputs = ExportedModel.from_pretrained(folder)(**inputs)
    assert isinstance(outputs, SequenceClassifierOutput) and outputs.logits.shape == (2, 3)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(["logits"], {i.name: inputs[i.name].numpy() for i in session.get_inputs()})
    np.testing.assert_allclose(outputs.logits.numpy(), logits, atol=1e-6)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["variant"] == variant and "onnxruntime" in manifest["versions"]


def test_gpt2_classifier_end_to_end(gpt2_run):
    out, _ = gpt2_run
    report = json.loads((out / "report.json").read_text())
    assert all(v.get("error") is None for v in report["variants"]), report["variants"]
    assert report["variants"][0]["metrics"]["max_abs_logit_diff"] < 1e-4
    static = report["variants"][-1]
    assert static["settings"]["calibration_method"] == "minmax"


@pytest.mark.parametrize("model_type", ["distilbert", "roberta"])
def test_other_encoders_end_to_end(model_type, data_dir, fast_recipe, tmp_path):
    from conftest import make_encoder

    ckpt = make_encoder(tmp_path / model_type, model_type)
    out = tmp_path / "out"
    result = compress(ckpt, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", fast_recipe, "--threads", "1")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert all(v.get("error") is None for v in report["variants"]), report["variants"]
    by_name = {v["name"]: v for v in report["variants"]}
    assert by_name["onnx-fp32"]["metrics"]["max_abs_logit_diff"] < 1e-4
    from expected_ops import expected_int8_ops

    for name in ("onnx-int8-dynamic", "onnx-int8-static"):
        assert by_name[name]["graph"]["int8_ops"] == expected_int8_ops(ckpt, name), (name, by_name[name]["graph"])


def test_existing_out_is_refused_then_replaced_with_force(bert_run, tiny_bert, data_dir, fast_recipe):
    bert_run, _ = bert_run
    before = (bert_run / "report.json").read_text()
    result = compress(tiny_bert, "--out", bert_run, "--eval-data", data_dir / "eval.csv", "--recipe", fast_recipe)
    assert result.exit_code == 2 and "--force" in result.output
    assert (bert_run / "report.json").read_text() == before  # nothing lost


def test_force_replaces_and_leaves_no_staging(tiny_bert, data_dir, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("validate: {latency_samples: 5, warmup: 0, batch_size: 8}\nquantize: {static: {enabled: false}}\n"
                      "optimize: {enabled: false}\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    (out / ".edge-compress").write_text("{}")  # an earlier compress result: the only kind --force replaces
    result = compress(tiny_bert, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", recipe, "--force",
                      "--max-accuracy-drop", "0")
    assert result.exit_code == 0, result.output
    assert not (out / "old.txt").exists() and (out / "report.json").exists()
    assert json.loads((out / "report.json").read_text())["max_accuracy_drop"] == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_console_script_help():
    result = subprocess.run([sys.executable, "-m", "edge_compress", "run", "--help"], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0
    assert "--max-accuracy-drop" in result.stdout and "--calib-data" in result.stdout


def test_prune_command_then_run_with_a_prune_recipe(tiny_bert, data_dir, tmp_path):
    from typer.testing import CliRunner

    pruned = tmp_path / "pruned"
    result = CliRunner().invoke(app, ["prune", str(tiny_bert), "--out", str(pruned), "--calib-data", str(data_dir / "train.csv"),
                                      "--heads", "0.5", "--ffn", "0.5", "--calib-batches", "2"])
    assert result.exit_code == 0, result.output
    section = json.loads((pruned / "prune_report.json").read_text())
    assert sum(section["heads_per_layer"]) == 4 and section["params_after"] < section["params_before"]
    recipe = tmp_path / "r.yaml"
    recipe.write_text("validate: {latency_samples: 5, warmup: 0, batch_size: 8}\nquantize: {static: {num_samples: 8}}\n"
                      "prune: {head_fraction: 0.25, num_calib_batches: 2, batch_size: 8}\n")
    out = tmp_path / "out"
    result = compress(pruned, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", recipe, "--threads", "1")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    names = [v["name"] for v in report["variants"]]
    assert names == VARIANTS + ["pruned-" + n for n in VARIANTS]
    assert all(v.get("error") is None for v in report["variants"]), report["variants"]
    assert report["pruning"]["params_after"] < report["pruning"]["params_before"]
    assert report["baseline"]["params"] == section["params_after"]  # the pruned checkpoint loaded with its shapes
    assert "heads per layer" in (out / "report.md").read_text()


def test_prune_errors_come_before_any_work(tiny_bert, data_dir, tmp_path):
    from typer.testing import CliRunner

    result = CliRunner().invoke(app, ["prune", str(tiny_bert), "--out", str(tmp_path / "p"), "--calib-data",
                                      str(data_dir / "train.csv"), "--heads", "1.0"])
    assert result.exit_code == 2 and "head_fraction" in result.output
    assert not (tmp_path / "p").exists()


def test_impossible_prune_budget_is_refused_before_any_variant_is_built(tiny_bert, data_dir, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("prune: {flops_budget: 0.001}\n")
    out = tmp_path / "out"
    result = compress(tiny_bert, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", recipe)
    assert result.exit_code == 2, result.output
    assert "building onnx-fp32" not in result.output and not out.exists()


def _encodings(tokenizer, texts):
    return [(e.ids, e.type_ids, e.attention_mask) for e in tokenizer.encode_batch(texts)]


@pytest.mark.parametrize("fixture", ["bert_run", "gpt2_run"])
def test_every_variant_ships_the_checkpoints_own_tokenizer(fixture, request, data_dir):
    """Static calibration pads/truncates with the working tokenizer; what ships must still be the checkpoint's (issue 11)."""
    from conftest import make_texts
    from tokenizers import Tokenizer

    out, ckpt = request.getfixturevalue(fixture)
    source = Tokenizer.from_file(str(ckpt / "tokenizer.json"))
    texts = [t for t, _ in make_texts(40, seed=1)] + ["a much longer text " * 40]
    report = json.loads((out / "report.json").read_text())
    folders = [out / v["path"] for v in report["variants"] if v["error"] is None]
    assert len(folders) >= 4
    for folder in folders:
        shipped = Tokenizer.from_file(str(folder / "tokenizer.json"))
        assert shipped.padding == source.padding and shipped.truncation == source.truncation, folder.name
        assert _encodings(shipped, texts) == _encodings(source, texts), folder.name


def test_selection_accuracy_is_measured_one_text_at_a_time(bert_run, data_dir):
    """metrics = batch 1 without padding (how the artefact runs); the padded-batch figure is kept apart, named."""
    import onnxruntime as ort
    from edge_compress.compress.data import load_text_data
    from transformers import AutoTokenizer

    out, ckpt = bert_run
    report = json.loads((out / "report.json").read_text())
    assert "batch 1" in report["protocol"]["metrics"] and "padded" in report["protocol"]["metrics_batch"]
    entry = next(v for v in report["variants"] if v["name"] == "onnx-int8-dynamic")
    tokenizer = AutoTokenizer.from_pretrained(out / entry["path"])
    session = ort.InferenceSession(str(out / entry["path"] / "model.onnx"), providers=["CPUExecutionProvider"])
    names = {i.name for i in session.get_inputs()}
    config = json.loads((ckpt / "config.json").read_text())
    data = load_text_data(str(data_dir / "eval.csv"), config["label2id"], len(config["id2label"]), None, None)
    predictions = [session.run(["logits"], {k: v for k, v in tokenizer([t], return_tensors="np").items() if k in names})[0].argmax()
                   for t in data.texts]
    accuracy = float(np.mean(np.array(predictions) == np.array(data.labels)) * 100)
    assert entry["metrics"]["accuracy"] == round(accuracy, 4)
    assert set(entry["metrics_batch"]) == set(entry["metrics"])


def test_report_says_which_tool_and_command_made_it(bert_run):
    out, _ = bert_run
    report = json.loads((out / "report.json").read_text())
    tool = report["tool"]
    assert tool["name"] == "edge-compress" and tool["version"] and tool["command"] and tool["duration_s"] > 0
    assert tool["started"].endswith("+00:00")
    assert set(report["durations_s"]) >= {"check", "load", "torch_stages", "baseline", "variants", "measure", "select", "write"}
    assert sum(report["durations_s"].values()) <= tool["duration_s"] + 1e-6
    for entry in [report["baseline"], *report["variants"]]:
        assert entry["latency_ms"]["rounds"] == 3 and len(entry["latency_ms"]["round_p50"]) == 3
        low, high = entry["latency_ms"]["spread"]
        assert low <= entry["latency_ms"]["p50"] <= high
