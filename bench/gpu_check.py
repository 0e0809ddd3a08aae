"""The Python half of bench/gpu_check.sh: model, `compress run` on the GPU targets, one table.

Default model: all-MiniLM-L6-v2 fine-tuned on the project's intent set (the demo's model; fine-tuned once on
the GPU, about a minute, and cached).  Every figure comes from the run's report.json; the table is also
written to OUT/gpu_check.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

from edge_compress.compress.commands.demo import (
    DEMO_BATCH,
    DEMO_EPOCHS,
    DEMO_LR,
    _read_labelled,
    fine_tune_classifier,
    intent_data,
    minilm_path,
)
from edge_compress.compress.recipe import Recipe
from edge_compress.compress.run.pipeline import RunOptions, run
from edge_compress.compress.run.targets import parse_targets

COLUMNS = ["target", "variant", "{metric}", "Δ pts", "p50 ms b=1", "p50 ms b={batch}", "peak MB", "vs onnx-fp32", "vs PyTorch"]


def demo_model(cache: Path) -> Path:
    train, _ = intent_data()
    key = hashlib.sha256(train.read_bytes() + json.dumps([DEMO_EPOCHS, DEMO_LR, DEMO_BATCH]).encode()).hexdigest()[:12]
    model = cache / f"minilm-intents-{key}"  # the same cache key as `compress demo`
    if not (model / "config.json").exists():
        texts, labels = _read_labelled(train)
        fine_tune_classifier(minilm_path(), texts, labels, model)
    return model


def table(report: dict) -> list[str]:
    """One row per (target, variant) measured there; speedups against onnx-fp32 and PyTorch on the same target."""
    metric, base = report["metric"], report["baseline"]
    headers = [c.format(metric=metric, batch=base["latency_ms_batch"]["batch_size"]) for c in COLUMNS]
    rows = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for target in report["targets"]["measured"]:
        on = lambda e, target=target: (e if target == "cpu" else e.get("targets", {}).get(target)) if e.get("error") is None else None
        fp32, torch = on(next(v for v in report["variants"] if v["name"] == "onnx-fp32")), on(base)
        for entry in [base, *report["variants"]]:
            result = on(entry)
            if result is None or result.get("error"):
                if result is not None or entry.get("error"):
                    rows.append(f"| {target} | {entry['name']} | failed: {(result or entry).get('error', '')[:60]} |" + " |" * 6)
                continue
            p50, mark = result["latency_ms"]["p50"], " ✔" if entry["name"] == report["selected"] else ""
            speedup = lambda ref, p50=p50: f"{ref['latency_ms']['p50'] / p50:.2f}x" if ref and not ref.get("error") else ""
            peak = result.get("peak_memory_mb")
            rows.append(f"| {target} | {entry['name']}{mark} | {result['metrics'][metric]:.2f} | "
                        f"{result['metrics'][metric] - base['metrics'][metric]:+.2f} | {p50:.2f} | "
                        f"{result['latency_ms_batch']['p50']:.2f} | {'' if peak is None else f'{peak:.0f}'} | "
                        f"{speedup(fp32)} | {speedup(torch)} |")
    for name, why in report["targets"]["unavailable"].items():
        rows.append(f"\n{name}: not available: {why}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/gpu-check"))
    parser.add_argument("--targets", default="cuda,tensorrt,cpu")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--eval-data", default=None)
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("EDGE_COMPRESS_CACHE", Path.home() / ".cache" / "edge-compress")))
    args = parser.parse_args()
    start = time.perf_counter()
    train, evaluation = intent_data()
    model = args.model or demo_model(args.cache)
    recipe = Recipe(targets=parse_targets(args.targets))
    recipe.validate_.threads = min(8, os.cpu_count() or 1)
    recipe.validate_.max_eval_samples = 1000
    report = run(RunOptions(str(model), args.out, args.eval_data or str(evaluation),
                            calib_data=None if args.eval_data else str(train), force=True), recipe)
    lines = [f"# GPU check: {model.name}, {report['eval']['samples']} eval texts, selection on {report['targets']['selection']}", "",
             *table(report), "", f"wall time {time.perf_counter() - start:.0f} s; full report: {args.out / 'report.md'}"]
    (args.out / "gpu_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
