"""PyTorch -> ONNX through optimum's exporter.

optimum knows each architecture's inputs, outputs and dynamic axes.  Its own
validation uses random dummy inputs, so we skip it: the pipeline compares the
exported model with PyTorch on the user's real eval texts instead.
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import onnx
import torch

from export.quiet import quiet

MODEL_FILE = "model.onnx"

# Tasks optimum's ONNX config for an architecture does not list, although the config exports them
# correctly (checked against PyTorch in tests): model_type -> (optimum config class, extra tasks).
# Decoder LMs used as classifiers pool the last non-pad token, which the text-decoder configs trace as is.
EXTRA_TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "gemma3_text": ("Gemma3TextOnnxConfig", ("text-classification",)),
}


class ExportError(RuntimeError):
    """The exporter failed; the message names the model part and operator when known."""


def export_to_onnx(model: torch.nn.Module, out_dir: Path, task: str, opset: int | None = None) -> Path:
    """Export an in-memory transformers model to `out_dir/model.onnx` (plus config.json).

    Exporting from the loaded model (not the checkpoint folder) means whatever the
    torch stages did to it (pruned shapes, fake-quant) is what gets exported.
    """
    from optimum.exporters.onnx import onnx_export_from_model

    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    _register_extra_tasks()
    try:
        with quiet(), _eager_attention(model), conv1d_as_linear(model):
            onnx_export_from_model(model, out_dir, task=task, opset=opset, do_validation=False)
    except Exception as err:  # optimum raises many types; name the part that failed
        raise ExportError(_describe_export_failure(model, err)) from err
    path = out_dir / MODEL_FILE
    if not path.exists():
        raise ExportError(f"optimum finished but wrote no {MODEL_FILE} in {out_dir} (files: {sorted(p.name for p in out_dir.iterdir())})")
    onnx.checker.check_model(str(path))
    return path


def _register_extra_tasks() -> None:
    import optimum.exporters.onnx.model_configs as configs
    from optimum.exporters.tasks import TasksManager

    for model_type, (config_name, tasks) in EXTRA_TASKS.items():
        known = TasksManager.get_supported_tasks_for_model_type(model_type, "onnx", library_name="transformers")
        missing = [t for t in tasks if t not in known]
        if missing:
            TasksManager.create_register("onnx", overwrite_existing=True)(model_type, *missing)(getattr(configs, config_name))


def _describe_export_failure(model: torch.nn.Module, err: Exception) -> str:
    model_type = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
    text = str(err).strip().splitlines()
    first = text[0] if text else type(err).__name__
    op_hint = next((line.strip() for line in text if "aten::" in line or "operator" in line.lower()), "")
    where = f" (operator: {op_hint})" if op_hint else ""
    return f"ONNX export of the {model_type} model ({type(model).__name__}) failed{where}: {type(err).__name__}: {first}"


def linear_from_conv1d(conv: torch.nn.Module) -> torch.nn.Linear:
    """nn.Linear computing what GPT-2's Conv1D computes (Conv1D stores its weight [in, out]; Linear [out, in])."""
    nx, nf = conv.weight.shape
    linear = torch.nn.Linear(nx, nf, bias=conv.bias is not None, device=conv.weight.device, dtype=conv.weight.dtype)
    with torch.no_grad():
        linear.weight.copy_(conv.weight.t())
        if conv.bias is not None:
            linear.bias.copy_(conv.bias)
    return linear


@contextlib.contextmanager
def conv1d_as_linear(model: torch.nn.Module):
    """Trace GPT-2-style Conv1D layers as nn.Linear, then put the originals back.

    Conv1D runs addmm on a flattened 2-D input, which exports as Gemm; ONNX Runtime's dynamic and
    MatMulNBits quantizers only quantize MatMul (and the static layout quantizes weight MatMuls), so the
    layers would silently stay float. As Linear they export as MatMul + Add like every other model's
    projections (ORT fuses them back).
    """
    from transformers.pytorch_utils import Conv1D

    swapped = [(name, module) for name, module in model.named_modules() if isinstance(module, Conv1D)]
    for name, module in swapped:
        model.set_submodule(name, linear_from_conv1d(module))
    try:
        yield
    finally:
        for name, module in swapped:
            model.set_submodule(name, module)


@contextlib.contextmanager
def _eager_attention(model: torch.nn.Module):
    """Trace the eager attention path, then restore the model's own.

    The SDPA path of GPT-2 traces to a graph whose logits differ from PyTorch by
    ~0.1 (seen with transformers 4.57 / torch 2.13); the eager path matches to
    1e-7 and is the pattern ONNX Runtime's attention fusion recognises.
    """
    config = getattr(model, "config", None)
    previous = getattr(config, "_attn_implementation", None)
    switch = previous not in (None, "eager") and hasattr(model, "set_attn_implementation")
    if switch:
        model.set_attn_implementation("eager")
    try:
        yield
    finally:
        if switch:
            model.set_attn_implementation(previous)
