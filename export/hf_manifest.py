"""Make a variant folder load with `transformers.exporters.ExportedModel.from_pretrained`.

transformers 5 reads an export folder through `export.json`: one entry per graph, naming its file and the
metadata the runner needs to turn keyword inputs into graph inputs and graph outputs back into the model's
own output class (`SequenceClassifierOutput`, `CausalLMOutputWithPast` with its cache).  It expects the
weights beside the graph in `<file>.data`.  Quantizing or fusing a graph keeps its input and output names,
so every variant carries the manifest of the export it was built from.

Hand-written because transformers writes the manifest only from its own dynamo export; graphs we export
through torch.onnx's TorchScript path (the one ONNX Runtime's transformer optimizer fuses best) get the
same manifest from the same metadata helpers.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx

MANIFEST_FILE = "export.json"
MODEL_FILE = "model.onnx"
DATA_SUFFIX = ".data"  # model.onnx.data: transformers' and ONNX Runtime's convention for external weights
SCHEMA_VERSION = 1


def single_graph_manifest(model: Any, inputs: Mapping[str, Any], outputs: Any) -> dict[str, Any]:
    """The manifest of a one-graph export traced with `inputs` (keyword tensors) that returned `outputs`."""
    import torch

    # _describe_traced_kwarg is private, but the manifest format is transformers' own: its helper keeps ours equal to
    # what ExportedModel reads (transformers is pinned to one minor version; tests load every folder through it).
    from transformers.exporters.metadata import ExportMetadata, _describe_traced_kwarg, record_output_structure

    _, in_spec = torch.utils._pytree.tree_flatten(((), dict(inputs)))
    parameter = next(model.parameters(), None)
    metadata = ExportMetadata(
        architecture=type(model).__name__,
        packages=_versions(),
        export_dtype=str(parameter.dtype if parameter is not None else torch.float32).removeprefix("torch."),
        export_device="cpu",
        kwargs={name: _describe_traced_kwarg(value) for name, value in inputs.items()},
        in_spec=torch.utils._pytree.treespec_dumps(in_spec),
    )
    record_output_structure(metadata, outputs)
    return {"schema_version": SCHEMA_VERSION, "export_format": "onnx",
            "components": {"model": {"file": MODEL_FILE, "metadata": dataclasses.asdict(metadata)}}}


def read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def finish_folder(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Each graph the manifest names (model.onnx; a seq2seq folder's encoder.onnx and decoder.onnx) with its weights
    in `<graph>.data`, and `export.json` beside them.

    Called on every variant folder before it is scored, so the report measures the files as shipped."""
    for entry in manifest["components"].values():
        _externalize(folder / entry["file"])
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _externalize(path: Path) -> None:
    data = path.with_name(path.name + DATA_SUFFIX)
    if _stored_as_shipped(path, data.name):
        return  # the builder wrote it that way already: do not write a 1 GB graph a second time
    model = onnx.load(str(path))  # reads an existing <graph>.data too
    staged = path.with_name(path.name + ".tmp")
    # Tensors under 1 KB stay in the graph: shape inputs (Unsqueeze axes, Reshape shapes) must be readable where ONNX
    # Runtime infers shapes at load time, which does not read external data.
    onnx.save_model(model, str(staged), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=data.name + ".tmp", size_threshold=1024)
    path.with_name(data.name + ".tmp").replace(data)
    _relink(staged, data.name)
    staged.replace(path)


def _stored_as_shipped(path: Path, location: str) -> bool:
    """Every tensor of 1 KB or more, and only those, already lives in `location` beside the graph."""
    model = onnx.load(str(path), load_external_data=False)
    for tensor in _all_tensors(model):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            entries = {e.key: e.value for e in tensor.external_data}
            if entries.get("location") != location or int(entries.get("length", 0)) < 1024:
                return False  # elsewhere, or a small shape tensor that ONNX Runtime must read at load time
        elif tensor.ByteSize() >= 1024:
            return False
    return (path.parent / location).exists() or not _external_tensors(model)


def model_files(path: Path) -> list[Path]:
    """The files one graph is stored in: the graph and every external-data file it names (any name: a shipped folder's
    `<graph>.data`, or whatever ORT, onnx and torch chose for an intermediate graph)."""
    model = onnx.load(str(path), load_external_data=False)
    locations = {e.value for t in _external_tensors(model) for e in t.external_data if e.key == "location"}
    return [path, *sorted(path.parent / location for location in locations)]


def _relink(graph_path: Path, location: str) -> None:
    """Point the staged graph's external-data entries at the final weights file name (graph only, weights untouched)."""
    model = onnx.load(str(graph_path), load_external_data=False)
    for tensor in _external_tensors(model):
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    onnx.save_model(model, str(graph_path))


def _all_tensors(model: onnx.ModelProto):
    from onnx.external_data_helper import _get_all_tensors  # initializers and tensor attributes of every subgraph

    return _get_all_tensors(model)


def _external_tensors(model: onnx.ModelProto):
    return [t for t in _all_tensors(model) if t.data_location == onnx.TensorProto.EXTERNAL]


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("transformers", "torch", "onnx", "onnxruntime"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            continue
    return found
