"""Every bad input gets a clear message (exit 2), before any slow work, and leaves nothing behind."""
import json
import shutil

import pytest
from conftest import write_csv
from edge_compress.compress.cli import app
from edge_compress.compress.errors import CompressError
from typer.testing import CliRunner


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
    recipe.write_text("task: summarization\n")
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
    import torch

    def broken(*args, **kwargs):
        raise RuntimeError("Exporting the operator 'aten::scaled_dot_product_attention' to ONNX opset version 9 is not supported")

    monkeypatch.setattr(torch.onnx, "export", broken)
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


# ---- issue 11: tracebacks and silent acceptance --------------------------------------------------------------

def invoke(*args):
    return CliRunner().invoke(app, [*map(str, args)])


@pytest.mark.parametrize("flag, value, phrase", [
    ("--threads", "0", "--threads 0: Input should be greater than or equal to 1"),
    ("--threads", "-2", "--threads -2: Input should be greater than or equal to 1"),
    ("--max-accuracy-drop", "-5", "--max-accuracy-drop -5.0: Input should be greater than or equal to 0"),
    ("--max-accuracy-drop", "nan", "--max-accuracy-drop nan: Input should be a finite number"),
    ("--max-accuracy-drop", "inf", "--max-accuracy-drop inf: Input should be a finite number"),
])
def test_cli_values_go_through_the_recipe_validation(ckpt, tmp_path, data_dir, flag, value, phrase):
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv", flag, value), phrase)
    assert not (tmp_path / "o").exists()


def test_qat_epochs_zero(ckpt, tmp_path, data_dir):
    expect_error(invoke("qat", ckpt, "--out", tmp_path / "o", "--data", data_dir / "train.csv", "--epochs", "0"),
                 "epochs=0 trains nothing")


def test_vocabulary_larger_than_the_embedding(ckpt, tmp_path, data_dir):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(ckpt)
    model.resize_token_embeddings(20)
    model.save_pretrained(ckpt)
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "embedding has only 20 rows",
                 "resize_token_embeddings")


def test_max_length_above_the_position_limit_is_refused_before_slow_work(ckpt, tmp_path, data_dir):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("validate: {max_length: 256}\n")
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv", "--recipe", recipe),
                 "validate.max_length is 256 but the model has only 128 positions", "at most 128")


def test_default_max_length_is_lowered_to_a_short_position_table():
    from edge_compress.compress.checkpoint import check_max_length
    from transformers import BertConfig, RobertaConfig

    assert check_max_length(BertConfig(max_position_embeddings=64), 128, explicit=False) == 64
    assert check_max_length(BertConfig(max_position_embeddings=512), 128, explicit=False) == 128
    assert check_max_length(RobertaConfig(max_position_embeddings=514, pad_token_id=1), 512, explicit=True) == 512
    with pytest.raises(CompressError, match="only 512 positions"):
        check_max_length(RobertaConfig(max_position_embeddings=514, pad_token_id=1), 514, explicit=True)


def test_mistyped_local_path_is_not_sent_to_the_hub(ckpt, tmp_path, data_dir, monkeypatch):
    import time

    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    expect_error(run("ckpt/../ckpt2", "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "checkpoint folder not found")
    (tmp_path / "runs").mkdir()
    expect_error(run("runs/bert", "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), "checkpoint folder not found")
    assert time.perf_counter() - start < 20  # no hub retries (they take ~30 s offline)


def test_mistyped_path_suggests_the_near_folder(ckpt, tmp_path, data_dir):
    expect_error(run(tmp_path / "ckpr", "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"), f"did you mean {ckpt}")


def test_pickle_only_checkpoint_says_so(ckpt, tmp_path, data_dir):
    import torch
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(ckpt)
    (ckpt / "model.safetensors").unlink()
    torch.save(model, ckpt / "pytorch_model.bin")  # a whole pickled module, not a state dict
    result = run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv")
    expect_error(result, "only as a pickle", "safetensors")
    assert "TF 2.0" not in result.output and "from_tf" not in result.output


def test_remote_code_refusal_names_the_flag(ckpt, tmp_path, data_dir):
    config = json.loads((ckpt / "config.json").read_text())
    config.update(model_type="my-custom-bert", auto_map={"AutoConfig": "configuration_my.MyConfig",
                                                         "AutoModelForSequenceClassification": "modeling_my.MyModel"})
    (ckpt / "config.json").write_text(json.dumps(config))
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data_dir / "eval.csv"),
                 "configuration_my.py, modeling_my.py", "--trust-remote-code")


def test_stray_quote_in_csv_is_reported_with_its_line(ckpt, tmp_path):
    rows = ["text,label", "my order is late,negative", '"where is my refund,neutral'] + [f"text {i},positive" for i in range(28)]
    data = tmp_path / "eval.csv"
    data.write_text("\n".join(rows) + "\n")
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data), "eval.csv:3", "stray", "line 3")


def test_csv_row_with_too_many_fields_is_reported_with_its_line(ckpt, tmp_path):
    data = tmp_path / "eval.csv"
    data.write_text("text,label\nmy order is late,negative\nwell, it is late,negative\n")
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", data), "eval.csv:3: expected 2 comma-separated fields", "found 3")


def test_bracketed_path_segment_prints_intact(ckpt, tmp_path):
    missing = tmp_path / "[" / "data]" / "eval.csv"
    result = run(ckpt, "--out", tmp_path / "o", "--eval-data", missing)
    expect_error(result, "[/data]/eval.csv")


def test_hint_with_brackets_prints_intact(ckpt, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("No module named 'datasets'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    expect_error(run(ckpt, "--out", tmp_path / "o", "--eval-data", "rotten_tomatoes"), "pip install 'edge-compress[datasets]'")


def test_generate_settings_are_checked_before_loading(tmp_path):
    expect_error(invoke("generate", tmp_path, "hello", "--max-new-tokens", "-3"), "--max-new-tokens -3: must be at least 1")
    expect_error(invoke("generate", tmp_path, "hello", "--sample", "--temperature", "0"), "--temperature 0: must be a finite number above 0")
