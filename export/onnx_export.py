"""PyTorch -> one ONNX graph through torch.onnx's TorchScript path, with the manifest transformers 5 loads it by.

Why TorchScript and not transformers' own `OnnxExporter` (dynamo): ONNX Runtime's transformer
optimizer recognises the TorchScript graph's attention pattern and fuses it into `Attention`,
which dynamic int8 then runs as `QAttention`; on the dynamo graph that fusion is lost and int8
dynamic ran at 0.53 of fp32's time instead of 0.46 on MiniLM (bench/bench_fusions.py compares the two).
Why not optimum: optimum-onnx requires transformers < 4.58.

What a task's graph takes and returns is the small table below: inputs are the sample's keys that
the model's forward names (in the forward's order, which is how the TorchScript exporter binds
keyword inputs), outputs are the task's output names, every axis but the last dynamic.  The
exporter's own checks use the sample only, so the pipeline compares the graph with PyTorch on the
user's real eval texts (`Task.check_parity`).  No per-architecture table is needed: a decoder used as a
classifier (GPT-2, Gemma 3) pools its last non-pad token, which traces as is (tests/test_pipeline.py).
"""
from __future__ import annotations

import contextlib
import inspect
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from edge_compress.export.failure import NativeLog, blame
from edge_compress.export.hf_manifest import MANIFEST_FILE, MODEL_FILE, single_graph_manifest
from edge_compress.export.quiet import quiet

DEFAULT_OPSET = 17  # the opset ONNX Runtime 1.32's transformer optimizer and quantizers are tested with


@dataclass(frozen=True)
class GraphOutputs:
    """What one task's graph returns: output names and their dynamic axes (the batch, and the sequence for per-token outputs)."""
    names: tuple[str, ...]
    axes: dict[int, str]


INPUT_AXES = {0: "batch_size", 1: "sequence_length"}
OUTPUTS: dict[str, GraphOutputs] = {
    "text-classification": GraphOutputs(("logits",), {0: "batch_size"}),
    "question-answering": GraphOutputs(("start_logits", "end_logits"), INPUT_AXES),
}

class ExportError(RuntimeError):
    """The model cannot be exported; the message names the model, the step (tracing, checking), and the module and
    operator when known; `hint` says what to change when it is more specific than the caller's advice."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ExportBug(RuntimeError):
    """The export failed in this project's own code: a bug to report, not something the user's model can fix."""


def export_to_onnx(model: torch.nn.Module, out_dir: Path, task: str, sample: Mapping[str, torch.Tensor],
                   opset: int | None = None) -> Path:
    """Export an in-memory transformers model to `out_dir/model.onnx` plus `export.json` (and config.json).

    Exporting from the loaded model (not the checkpoint folder) means whatever the torch stages did to it
    (pruned shapes, fake-quant stripped) is what gets exported.  `sample` (tokenizer output, as tensors) is
    what the graph is traced on; use a batch of two padded texts so no axis is traced at size 1.
    """
    if task not in OUTPUTS:
        raise ExportError(f"no single-graph ONNX export is defined for task {task!r} (known: {', '.join(OUTPUTS)})")
    outputs = OUTPUTS[task]
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    inputs = forward_inputs(model, sample)
    path = out_dir / MODEL_FILE
    log = NativeLog()   # the exporter prints its whole graph from C++ when a pass fails: kept out of the terminal
    with eager_attention(model), conv1d_as_linear(model), _no_cache(model), torch.no_grad():
        try:
            traced = model(**inputs)
            manifest = single_graph_manifest(model, inputs, _selected(traced, outputs.names))
            with quiet(), log:
                torch.onnx.export(model, (), str(path), kwargs=inputs, input_names=list(inputs),
                                  output_names=list(outputs.names),
                                  dynamic_axes={**{name: INPUT_AXES for name in inputs},
                                                **{name: outputs.axes for name in outputs.names}},
                                  opset_version=opset or DEFAULT_OPSET, dynamo=False)
        except Exception as err:  # the tracer raises many types; name the part that failed
            raise export_failure(model, "tracing", err, log.text) from err
    try:
        onnx.checker.check_model(str(path))
    except Exception as err:
        raise export_failure(model, "checking the traced graph", err) from err
    _check_io(path, list(inputs), outputs.names, model)
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return path


def forward_inputs(model: torch.nn.Module, sample: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The sample's tensors the model's forward names, in the forward's order.

    A key the forward does not name would be swallowed by its `**kwargs` and silently missing from the graph.
    """
    parameters = [name for name, p in inspect.signature(model.forward).parameters.items()
                  if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return {name: sample[name] for name in parameters if name in sample}


def _selected(outputs, names: tuple[str, ...]):
    """The model's own output object holding only the graph's outputs (what ExportedModel rebuilds from the graph)."""
    missing = [name for name in names if getattr(outputs, name, None) is None]
    if missing:
        raise ValueError(f"{type(outputs).__name__} has no {missing}")
    return type(outputs)(**{name: getattr(outputs, name) for name in names})


def _check_io(path: Path, inputs: list[str], outputs: tuple[str, ...], model: torch.nn.Module) -> None:
    """The graph must return the task's outputs by name and take only traced inputs (the tracer drops one the model
    ignores; runners feed the graph's own inputs, so that is harmless)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    got_in, got_out = [i.name for i in graph.input], [o.name for o in graph.output]
    if got_out != list(outputs) or not set(got_in) <= set(inputs):
        raise ExportError(f"the {_model_name(model)} export has inputs {got_in} and outputs {got_out}, expected inputs "
                          f"among {inputs} and outputs {list(outputs)}")


def _model_name(model: torch.nn.Module) -> str:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    return f"{model_type} model ({type(model).__name__})" if model_type else type(model).__name__


def export_failure(model: torch.nn.Module, step: str, err: Exception, log: str = "") -> ExportError | ExportBug:
    """One line naming the architecture, the step, the error and the failing module/operator (export.failure):
    an ExportError when the model cannot export, an ExportBug when this project's code failed."""
    text = str(err).strip().splitlines()
    first = text[0] if text else ""
    found = blame(model, err, log)
    detail = f" ({found.describe()})" if found.describe() else ""
    if found.ours:
        return ExportBug(f"exporting the {_model_name(model)} failed while {step} in edge-compress's own code "
                         f"({found.where}): {type(err).__name__}: {first}{detail}")
    message = f"ONNX export of the {_model_name(model)} failed while {step}: {type(err).__name__}: {first}{detail}"
    if found.operator and found.module:
        return ExportError(message, f"{found.module} uses {found.operator}, which torch.onnx cannot export: rewrite that "
                                    "module with supported operators, register a symbolic for the operator "
                                    "(torch.onnx.register_custom_op_symbolic), or try another opset (recipe "
                                    "export.opset: 14 or 18)")
    if found.module and not found.operator:
        return ExportError(message, f"the model's own code failed in {found.module} while it was traced for export: "
                                    "check that the checkpoint's config matches its architecture and that its forward "
                                    "runs on a plain batch of token ids")
    return ExportError(message)


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
def conv1d_as_linear(model: torch.nn.Module) -> Iterator[None]:
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
def eager_attention(model: torch.nn.Module) -> Iterator[None]:
    """Trace the eager attention path, then restore the model's own.

    The SDPA path traces to a graph ONNX Runtime's attention fusion does not recognise (and GPT-2's
    SDPA graph differed from PyTorch by ~0.1 on transformers 4.57); the eager path matches to 1e-7.
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


@contextlib.contextmanager
def _no_cache(model: torch.nn.Module) -> Iterator[None]:
    """A decoder used as a classifier would also return its KV cache; a single-graph export returns the task's outputs only."""
    config = getattr(model, "config", None)
    previous = getattr(config, "use_cache", None)
    if previous:
        config.use_cache = False
    try:
        yield
    finally:
        if previous:
            config.use_cache = previous
