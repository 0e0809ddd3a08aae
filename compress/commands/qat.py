"""`compress qat`: one command from a fine-tuned classifier to a QAT-trained int8 ONNX folder
(plain onnxruntime and transformers' ExportedModel.from_pretrained load it).

`compress run` with a `qat:` recipe section does the same inside the full validation and report;
this command is for scripts that only want the artefact (and a record of what was learned).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from edge_compress.compress.console import console, info
from edge_compress.compress.ranks import is_main_process, world_size
from edge_compress.compress.recipe import Recipe
from rich.markup import escape


def qat_checkpoint(model_source: str, out: Path, data_source: str, recipe: Recipe, force: bool = False,
                   text_column: str | None = None, label_column: str | None = None) -> dict[str, Any]:
    """Write OUT/model.onnx (int8, learned ranges) + config, tokenizer, qat_report.json, recipe.yaml, atomically."""
    from edge_compress.compress.checkpoint import check_max_length, load_checkpoint
    from edge_compress.compress.data import load_training_texts
    from edge_compress.compress.outputs import check_target, staged
    from edge_compress.compress.qat.build import qat_to_onnx
    from edge_compress.compress.quantize.presets import preset_for
    from edge_compress.compress.run.measure import runtime_graph
    from edge_compress.compress.tasks import get_task
    from edge_compress.export.hardware import cpu_info
    from edge_compress.export.hf_manifest import finish_folder, read_manifest
    from edge_compress.export.onnx_export import MODEL_FILE

    check_target(out, force, (model_source, data_source))
    task = get_task(recipe.task)
    ckpt = load_checkpoint(model_source, task)
    recipe.validate_.max_length = check_max_length(ckpt.model.config, recipe.validate_.max_length,
                                                   "max_length" in recipe.validate_.model_fields_set)
    config = ckpt.model.config
    data = load_training_texts(data_source, config.label2id, config.num_labels, text_column, label_column)
    preset = preset_for(cpu_info(), recipe.quantize.preset)
    threads = recipe.validate_.threads or min(4, os.cpu_count() or 1)
    torch.set_num_threads(threads)
    limit = recipe.validate_.max_length
    feeds = [dict(ckpt.tokenizer([t], truncation=True, max_length=limit, return_tensors="np")) for t in data.texts[:8]]
    with staged(out, force, (model_source, data_source)) as stage:
        def export(model, folder: Path) -> Path:
            return task.export(model, ckpt.tokenizer, folder, recipe.export.opset)

        path, record = qat_to_onnx(ckpt.model, ckpt.tokenizer, data.texts, data.labels, recipe.qat.to_config(preset),
                                   stage / MODEL_FILE, export, preset, feeds, feeds, threads, limit)
        config.save_pretrained(stage)
        finish_folder(stage, read_manifest(stage))
        ckpt.tokenizer.save_pretrained(stage)
        graph = runtime_graph(path)
        report = {"source": data.source, "texts": len(data.texts), "labels_used": data.labels is not None,
                  "processes": world_size(),   # > 1 under a distributed launch (compress.ranks)
                  "preset": preset.as_dict(), "runtime_graph": graph, **record, "qat": recipe.qat.model_dump()}
        (stage / "qat_report.json").write_text(json.dumps(report, indent=2))
        (stage / "recipe.yaml").write_text(recipe.to_yaml())
    if not is_main_process():
        return report
    info(f"int8 kernels in the runtime graph: {graph['int8_ops']}; float weight MatMuls left: {graph['float_weight_matmuls']}")
    console.print(f"QAT int8 model: [bold]{escape(str(out / MODEL_FILE))}[/] "
                  f"(transformers.exporters.ExportedModel.from_pretrained({escape(repr(str(out)))}) loads it)")
    return report
