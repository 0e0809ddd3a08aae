"""A model card (`README.md`) in every variant folder: what it is, how it was made, what it measured, how to load it.

Written at the end of the run, from the serialized report (the measured figures exist only
after the interleaved timing rounds) and the folder's `manifest.json` (what it was made from).
The loading snippet is plain onnxruntime first (it works whatever the Hugging Face stack of
the day is), then transformers' own `ExportedModel`, which reads the folder's export.json and
returns the model's own output class.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge_compress.compress.report.noise import describe, noise_from_dict

_FEED = 'feed = {k: v for k, v in tokenizer(["an example text"], return_tensors="np").items() if k in names}'
# task -> (what ExportedModel returns, how the onnxruntime snippet feeds the graph and reads its outputs)
_OUTPUTS: dict[str, tuple[str, list[str]]] = {
    "text-classification": ("SequenceClassifierOutput", [_FEED, 'logits = session.run(["logits"], feed)[0]']),
    "question-answering": ("QuestionAnsweringModelOutput",
                           [_FEED.replace('["an example text"]', '"a question?", "its context"'),
                            'start_logits, end_logits = session.run(["start_logits", "end_logits"], feed)']),
    "causal-lm": ("CausalLMOutputWithPast",
                  ["# a KV-cache decoder: feed input_ids, attention_mask, position_ids and empty past_key_values.*;",
                   "# ExportedModel below runs the graph with its cache for you"]),
}
_PRECISION = {"fp32": "32-bit float", "fp16": "16-bit float", "int8": "8-bit integer", "int4": "4-bit integer weights"}


def write_cards(out: Path, report: dict[str, Any]) -> list[Path]:
    """README.md in each built variant folder of `out` (paths in `report` are relative to it)."""
    written = []
    for entry in report["variants"]:
        if entry.get("error") is not None or not entry.get("path"):
            continue
        folder = out / entry["path"]
        manifest_path = folder / "manifest.json"
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        (folder / "README.md").write_text(card(entry, report, manifest))
        written.append(folder / "README.md")
    return written


def _settings(settings: dict[str, Any]) -> list[str]:
    lines = []
    for key, value in settings.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items() if not isinstance(v, (dict, list)))
        lines.append(f"- `{key}`: {value}")
    return lines or ["- none (the plain export)"]


def card(entry: dict[str, Any], report: dict[str, Any], manifest: dict[str, Any]) -> str:
    metric, base = report["metric"], report["baseline"]
    delta = entry.get("delta") or {}
    value, base_value = entry["metrics"][metric], base["metrics"][metric]
    selected = report["selected"] == entry["name"]
    status = ("**selected** by this run: " + report["selection_reason"]) if selected else \
        f"not selected (the run selected `{report['selected']}`)" if report["selected"] else "not selected (no variant was)"
    model_file = "model.onnx"
    kind = _PRECISION.get(entry["precision"], entry["precision"])
    change = describe(noise_from_dict(entry.get("noise")), delta.get("metric", 0.0))
    breakdown = entry.get("size_breakdown") or {}
    parts = ", ".join(f"{k} {p['bytes'] / 1e6:.1f} MB ({p['share']:.0%})" for k, p in (breakdown.get("parts") or {}).items())
    lines = [f"# {entry['name']}", "",
             (f"{_article(kind)} {kind} ONNX {report['task']} model made by edge-compress "
             f"{report['tool']['version']} from `{manifest.get('checkpoint', base['path'])}`; {status}."), "",
             "## How it was made", "",
             (f"- made from: {manifest.get('made_from', 'the PyTorch checkpoint')} "
             f"(input SHA-256 `{manifest.get('input_sha256') or 'n/a'}`)"),
             f"- precision: {entry['precision']}; runs on ONNX Runtime's {entry['provider']}",
             *_settings(entry.get("settings") or {}),
             f"- command: `{report['tool']['command']}` (the full recipe is `../../recipe.yaml`)", "",
             "## Measured (same eval data, same threads, interleaved timing rounds)", "",
             "| | this model | float baseline |", "|---|---|---|",
             f"| {metric} | {value:.2f} ({change}) | {base_value:.2f} |",
             f"| agreement with the float model | {entry['metrics'].get('agreement', 100):.1f} % | 100 % |",
             (f"| p50 latency, batch 1 | {entry['latency_ms']['p50']:.2f} ms ({delta.get('speedup', 1):.2f}x faster) | "
             f"{base['latency_ms']['p50']:.2f} ms |"),
             (f"| size | {entry['size_bytes'] / 1e6:.2f} MB ({delta.get('compression', 1):.2f}x smaller) | "
             f"{base['size_bytes'] / 1e6:.2f} MB |"), ""]
    if parts:
        lines += [f"Where the bytes are: {parts}.", ""]
    lines += [(f"Eval set: {report['eval']['samples']} items from `{report['eval']['source']}`; host CPU: "
              f"{report['environment']['cpu']['model']}, {report['environment']['threads']} threads. Measured on this host "
              "only: time it again where it ships."), "",
              "## How to load it", ""]
    if report["task"] == "translation":  # two graphs: export/seq2seq.py describes their inputs and outputs
        return "\n".join(lines + [(
            "`encoder.onnx` (source -> cross-attention cache `cross.{i}.key/value`) and `decoder.onnx` (one token, the "
            "self-attention cache `past.{i}.*` and the cross cache -> `logits`, `present.{i}.*`) run on plain ONNX Runtime. "
            "`compress generate . \"a source sentence\"` translates with them; "
            "`transformers.exporters.ExportedModel.from_pretrained(folder).runners[\"encoder\" or \"decoder\"](**tensors)` "
            "runs each graph."), "", "`manifest.json` holds the settings, metrics and library versions as JSON.", ""])
    lines += ["With plain ONNX Runtime and the tokenizer saved beside it:", "", "```python",
              "import onnxruntime as ort",
              "from transformers import AutoTokenizer", "",
              'folder = "."  # this folder',
              "tokenizer = AutoTokenizer.from_pretrained(folder)",
              f'session = ort.InferenceSession(f"{{folder}}/{model_file}", providers=["CPUExecutionProvider"])',
              "names = {i.name for i in session.get_inputs()}"]
    output_class, read_outputs = _OUTPUTS[report["task"]]
    lines += [*read_outputs, "```", "",
              (f"With transformers (5.x), which reads `export.json` and the weights in `{model_file}.data` and returns "
               f"a `{output_class}` like the PyTorch model:"), "", "```python",
              "from transformers.exporters import ExportedModel", "",
              "model = ExportedModel.from_pretrained(folder)",
              'outputs = model(**tokenizer(["an example text"], return_tensors="pt"))', "```", "",
              "`manifest.json` holds the settings, metrics and library versions as JSON.", ""]
    return "\n".join(lines)


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou8" else "A"
