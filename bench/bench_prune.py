"""Pruning benchmark (issue 3): retraining-free and distilled structured pruning of a real fine-tuned MiniLM.

Uses the model and Rotten Tomatoes split of bench_classifier.py (fine-tuned once, cached).  Two
`compress run`s with a prune: stage -- retraining-free under a FLOPs budget, and half the heads +
half the FFN neurons with distillation -- then every model is timed interleaved on the same inputs.

    python bench/bench_prune.py [--threads 2] [--flops-budget 0.70] [--calib-batches 64] [--distill-epochs 2]
"""
from __future__ import annotations

import time
from pathlib import Path

from bench_classifier import bench_parser, interleaved_p50, prepare
from edge_compress.compress.console import console
from edge_compress.compress.recipe import DistillSpec, PruneSpec, Recipe
from edge_compress.compress.run.measure import onnx_runner, torch_runner
from edge_compress.compress.run.pipeline import RunOptions, run
from edge_compress.compress.tasks.text_classification.evaluate import ClassifierEvaluation


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--flops-budget", type=float, default=0.70, help="retraining-free: fraction of FLOPs kept")
    parser.add_argument("--calib-batches", type=int, default=64, help="batches of 16 labelled train texts for importance scores")
    parser.add_argument("--distill-epochs", type=float, default=2.0)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-prune"))
    args = parser.parse_args()
    started = time.time()
    console.width = max(console.width, 190)

    _, evaluation, model_dir, work = prepare(args, "bench-prune-")
    eval_csv, train_csv = work / "eval.csv", work / "train.csv"

    runs = {
        "retraining-free": Recipe(prune=PruneSpec(flops_budget=args.flops_budget, num_calib_batches=args.calib_batches)),
        "distilled": Recipe(prune=PruneSpec(head_fraction=0.5, ffn_fraction=0.5, num_calib_batches=args.calib_batches),
                            distill=DistillSpec(epochs=args.distill_epochs, batch_size=32, label_weight=0.5)),
    }
    reports = {}
    for name, recipe in runs.items():
        recipe.validate_.threads = args.threads
        recipe.quantize.static.enabled = name == "distilled"
        console.rule(f"[bold]{name}")
        reports[name] = run(RunOptions(str(model_dir), args.out / name, str(eval_csv), calib_data=str(train_csv), force=True), recipe)

    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(args.threads)
    ev = ClassifierEvaluation([t for t, _ in evaluation], AutoTokenizer.from_pretrained(model_dir), 128, 32, 200, 10)
    base = reports["retraining-free"]["baseline"]
    rows = {"pytorch-fp32": (base["metrics"]["accuracy"], base["size_bytes"], None)}
    runners = {"pytorch-fp32": torch_runner(AutoModelForSequenceClassification.from_pretrained(model_dir).eval())}
    picks = [("retraining-free", "onnx-fp32"), ("retraining-free", "onnx-int8-dynamic"),
             ("retraining-free", "pruned-onnx-fp32"), ("retraining-free", "pruned-onnx-fp32-optimized"),
             ("retraining-free", "pruned-onnx-int8-dynamic"),
             ("distilled", "pruned-onnx-fp32"), ("distilled", "pruned-onnx-fp32-optimized"),
             ("distilled", "pruned-onnx-int8-dynamic"), ("distilled", "pruned-onnx-int8-static")]
    for run_name, variant in picks:
        v = next(x for x in reports[run_name]["variants"] if x["name"] == variant)
        if v.get("error"):
            continue
        label = variant if not variant.startswith("pruned-") else f"{run_name}: {variant}"
        runners[label] = onnx_runner(args.out / run_name / v["path"] / "model.onnx", args.threads)
        rows[label] = (v["metrics"]["accuracy"], v["size_bytes"], reports[run_name]["pruning"] if variant.startswith("pruned-") else None)
    p50 = interleaved_p50(runners, ev.singles, args.rounds)
    print_table(rows, p50, args.threads)
    check(rows, p50, base["metrics"]["accuracy"])
    console.print(f"wall time {time.time() - started:.0f} s; reports under {args.out}")


def print_table(rows, p50, threads) -> None:
    from rich.table import Table

    base_acc = rows["pytorch-fp32"][0]
    t = Table(title=f"Structured pruning, MiniLM-L6 on Rotten Tomatoes: batch 1, {threads} threads")
    for col in ("model", "accuracy", "Δ pts", "FLOPs kept", "heads/layer", "p50 ms", "vs torch", "vs onnx-fp32", "size MB"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for name, (acc, size, pruning) in rows.items():
        flops = f"{pruning['flops_after'] / pruning['flops_before']:.0%}" if pruning else "100%"
        heads = ",".join(map(str, pruning["heads_per_layer"])) if pruning else ""
        t.add_row(name, f"{acc:.2f}", f"{acc - base_acc:+.2f}", flops, heads, f"{p50[name]:.2f}",
                  f"{p50['pytorch-fp32'] / p50[name]:.2f}x", f"{p50['onnx-fp32'] / p50[name]:.2f}x", f"{size / 1e6:.1f}")
    console.print(t)


def check(rows, p50, base_acc) -> None:
    def drop(name):
        return base_acc - rows[name][0]

    rf, rf_flops = "retraining-free: pruned-onnx-fp32", rows["retraining-free: pruned-onnx-fp32"][2]
    ds = "distilled: pruned-onnx-fp32"
    int8 = min((n for n in rows if n.startswith(("retraining-free: pruned-onnx-int8", "distilled: pruned-onnx-int8"))
                and drop(n) <= 1.5), key=lambda n: p50[n], default=None)
    checks = {
        "retraining-free: >= 30% FLOPs removed, drop <= 1.0": 1 - rf_flops["flops_after"] / rf_flops["flops_before"] >= 0.30 and drop(rf) <= 1.0,
        "distilled (1/2 heads, 1/2 FFN): drop <= 1.5": drop(ds) <= 1.5,
        "distilled: ONNX fp32 >= 1.6x faster than unpruned ONNX fp32": p50["onnx-fp32"] / p50[ds] >= 1.6,
        f"pruned + int8 ({int8}): >= 6x faster than PyTorch fp32": int8 is not None and p50["pytorch-fp32"] / p50[int8] >= 6,
    }
    for name, ok in checks.items():
        console.print(f"{'[green]PASS[/]' if ok else '[red]FAIL[/]'} {name}")


if __name__ == "__main__":
    main()
