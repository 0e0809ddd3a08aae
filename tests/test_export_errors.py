"""Export failures say what failed in their first line: the architecture, the module, the operator, with `error:` and
`fix:`; exit 2 when the user's model cannot export, 1 (a bug, traceback kept) when this project's code failed.
The exporter's own ~170-line IR graph dump never reaches the terminal."""
from __future__ import annotations

import torch
from edge_compress.compress.cli import app
from edge_compress.compress.run import context
from typer.testing import CliRunner

RECIPE = ("validate: {latency_samples: 5, warmup: 0, batch_size: 8}\n"
          "quantize: {static: {enabled: false}, dynamic: {enabled: false}}\noptimize: {enabled: false}\n")


class Zeta(torch.nn.Module):
    """A custom activation whose operator torch.onnx has no export for."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.special.zeta(x.abs() + 1.5, torch.full_like(x, 2.0))


class SdpaOnlyAttention(torch.nn.Module):
    """An architecture that knows only its SDPA attention: the exporter's switch to eager attention is a KeyError."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner, self.config = inner, inner.config

    def forward(self, *args, **kwargs):
        implementation = {"sdpa": self.inner}[self.config._attn_implementation]
        return implementation(*args, **kwargs)


def _with(monkeypatch, change) -> None:
    """The run loads the checkpoint, then `change` puts the custom part into its model (as remote code would)."""
    real = context.load_checkpoint

    def load(*args, **kwargs):
        ckpt = real(*args, **kwargs)
        change(ckpt.model)
        return ckpt
    monkeypatch.setattr(context, "load_checkpoint", load)


def _run(tiny_bert, data_dir, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(RECIPE)
    return CliRunner().invoke(app, ["run", str(tiny_bert), "--out", str(tmp_path / "o"), "--eval-data",
                                    str(data_dir / "eval.csv"), "--recipe", str(recipe), "--threads", "1"])


def _error_lines(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("error:"))
    return lines[start:start + 6]


def test_a_custom_module_that_cannot_export_is_named_first_and_the_graph_dump_is_kept_out(
        tiny_bert, data_dir, tmp_path, monkeypatch, capfd):
    _with(monkeypatch, lambda model: setattr(model.bert.encoder.layer[0].intermediate, "intermediate_act_fn", Zeta()))
    result = _run(tiny_bert, data_dir, tmp_path)
    assert result.exit_code == 2, result.output
    head = " ".join(" ".join(_error_lines(result.output)).split())
    assert "bert model (BertForSequenceClassification)" in head and "aten::special_zeta" in head
    assert "bert.encoder.layer.0.intermediate.intermediate_act_fn (Zeta)" in head
    assert "fix: bert.encoder.layer.0.intermediate.intermediate_act_fn (Zeta) uses aten::special_zeta" in head
    native = capfd.readouterr()
    assert "Torch IR graph" not in native.out + native.err + result.output
    assert not (tmp_path / "o").exists()


def test_an_architecture_whose_export_raises_key_error_is_a_user_error_naming_it(tiny_bert, data_dir, tmp_path, monkeypatch):
    def sdpa_only(model):
        layer = model.bert.encoder.layer[1].attention
        layer.self = SdpaOnlyAttention(layer.self)
    _with(monkeypatch, sdpa_only)
    result = _run(tiny_bert, data_dir, tmp_path)
    assert result.exit_code == 2, result.output
    head = " ".join(" ".join(_error_lines(result.output)).split())
    assert "bert model (BertForSequenceClassification) failed while tracing: KeyError: 'eager'" in head
    assert "bert.encoder.layer.1.attention.self (SdpaOnlyAttention)" in head and "fix: the model's own code failed" in head


def test_an_export_failure_in_our_own_code_is_an_internal_error(tiny_bert, data_dir, tmp_path, monkeypatch):
    from edge_compress.export import onnx_export

    broken = {**onnx_export.OUTPUTS, "text-classification": onnx_export.GraphOutputs(("scores",), {0: "batch_size"})}
    monkeypatch.setattr(onnx_export, "OUTPUTS", broken)   # a wrong table entry: our bug, not the model's
    result = _run(tiny_bert, data_dir, tmp_path)
    assert result.exit_code == 1 and isinstance(result.exception, onnx_export.ExportBug)
    head = " ".join(" ".join(_error_lines(result.output)).split())
    assert head.startswith("error: internal error: ExportBug: exporting the bert model (BertForSequenceClassification)")
    assert "fix: this is a bug in edge-compress" in head

