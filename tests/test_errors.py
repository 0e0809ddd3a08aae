"""Every bad input gets a clear message (exit 2), before any slow work, and leaves nothing behind."""
import json
import shutil

import pytest
from typer.testing import CliRunner

from compress.cli import app
from conftest import write_csv


def run(*args):
    return CliRunner().invoke(app, ["run", *map(str, args)])


def expect_error(result, *phrases):
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    for phrase in phrases:
        assert phrase in text, text
    assert "fix:" in text


@pytest.fixture
def ckpt(tiny_bert, tmp_path):
    return shutil.copytree(tiny_bert, tmp_path / "ckpt")


def test_missing_folder(tmp_path, data_dir):
    expect_error(run(tmp_path / "nope", "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "not found")
    assert not (tmp_path / "o").exists()


def test_no_config_json(ckpt, tmp_path, data_dir):
    (ckpt / "config.json").unlink()
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "no config.json")


def test_corrupt_weights(ckpt, tmp_path, data_dir):
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "could not load the weights", "corrupt")
    assert not (tmp_path / "o").exists()


def test_nan_weights(ckpt, tmp_path, data_dir):
    from safetensors.torch import load_file, save_file

    weights = load_file(ckpt / "model.safetensors")
    name = next(k for k in weights if k.endswith("query.weight"))
    weights[name][0, 0] = float("nan")
    save_file(weights, ckpt / "model.safetensors", metadata={"format": "pt"})
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "NaN")


def test_unknown_architecture(ckpt, tmp_path, data_dir):
    config = json.loads((ckpt / "config.json").read_text())
    config["model_type"] = "not-a-model"
    (ckpt / "config.json").write_text(json.dumps(config))
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "unknown model architecture")


def test_architecture_without_sequence_classification(ckpt, tmp_path, data_dir):
    config = json.loads((ckpt / "config.json").read_text())
    config["model_type"] = "vit"
    (ckpt / "config.json").write_text(json.dumps(config))
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "cannot use for sequence classification")


def test_unknown_task(ckpt, tmp_path, data_dir):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: translation\n")
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv", "--recipe", recipe), "unknown task")


def test_bad_recipe_field(ckpt, tmp_path, data_dir):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("quantize: {static: {calibration_method: magic}}\n")
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv", "--recipe", recipe),
                 "quantize.static.calibration_method")


def test_no_tokenizer(ckpt, tmp_path, data_dir):
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (ckpt / name).unlink(missing_ok=True)
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "tokenizer")


def test_empty_data_file(ckpt, tmp_path):
    (tmp_path / "e.csv").write_text("")
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", tmp_path / "e.csv"), "is empty")


def test_labels_not_in_label2id(ckpt, tmp_path):
    data = write_csv(tmp_path / "e.csv", [("my order", "positive"), ("late", "furious")])
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data), "'furious'", "label2id")


def test_export_failure_names_the_model_part(ckpt, tmp_path, data_dir, monkeypatch, fast_recipe):
    import optimum.exporters.onnx as exporters

    def broken(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::scaled_dot_product_attention' to ONNX opset version 9 is not supported")

    monkeypatch.setattr(exporters, "onnx_export_from_model", broken)
    out = tmp_path / "o"
    expect_error(run(ckpt, "--out", out, "--eval-data", data_dir / "eval.csv", "--recipe", fast_recipe),
                 "ONNX export of the bert model", "aten::scaled_dot_product_attention")
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if ".partial" in p.name]  # staging folder removed


def test_single_class_eval_warns_but_runs(tmp_path, tiny_bert):
    data = write_csv(tmp_path / "e.csv", [("my order is late", "positive")] * 6)
    recipe = tmp_path / "r.yaml"
    recipe.write_text("validate: {latency_samples: 5, warmup: 0, batch_size: 2}\nquantize: {static: {enabled: false}, dynamic: {enabled: false}}\n"
                      "optimize: {enabled: false}\n")
    result = run(tiny_bert, "--out", tmp_path / "o", "--eval-data", data, "--recipe", recipe)
    assert result.exit_code == 0, result.output
    assert "same label" in " ".join(result.output.split())
