"""The same command, data and machine give the same model and the same metrics (issue 11, item 7)."""
import hashlib
import json

from edge_compress.compress.cli import app
from typer.testing import CliRunner


def qat_once(model, data, recipe, out, *extra):
    result = CliRunner().invoke(app, ["qat", str(model), "--out", str(out), "--data", str(data), "--recipe", str(recipe),
                                      "--max-steps", "4", "--batch-size", "8", "--learning-rate", "1e-3", *map(str, extra)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "qat_report.json").read_text())
    return report, hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()


def test_qat_twice_gives_identical_scales_metrics_and_model_and_the_seed_matters(tiny_bert, data_dir, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("validate: {threads: 2}\n")  # multi-threaded reductions included
    data = data_dir / "train.csv"
    first, first_model = qat_once(tiny_bert, data, recipe, tmp_path / "a")
    second, second_model = qat_once(tiny_bert, data, recipe, tmp_path / "b")
    assert first["learned_scales"] == second["learned_scales"]
    assert first["learned_scales"]["mean_relative_change"] > 0  # it trained
    assert first["fake_quant_vs_onnx_max_logit_diff"] == second["fake_quant_vs_onnx_max_logit_diff"]
    assert first_model == second_model
    assert first["qat"]["seed"] == 0 and "seed: 0" in (tmp_path / "a" / "recipe.yaml").read_text()

    other, other_model = qat_once(tiny_bert, data, recipe, tmp_path / "c", "--seed", "7")
    assert other["qat"]["seed"] == 7 and "seed: 7" in (tmp_path / "c" / "recipe.yaml").read_text()
    assert other_model != first_model
