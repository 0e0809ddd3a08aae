"""Time the classifier variants of two `compress run` OUT folders side by side, interleaved in one process.

Two bench runs minutes apart on a shared VM differ by 30 % on identical graphs; only models timed in the
same rounds compare. This reopens each run's variant folders (e.g. the old-stack and the new-stack run of
bench/bench_classifier.py) and times them with the run's protocol (export/timing.py: every model once per
round, warmed, batch 1, the median over rounds of each model's p50) on the same eval texts.

    python bench/compare_runs.py OLD_OUT NEW_OUT --eval-csv eval.csv [--rounds 6] [--threads 2]
"""
from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from edge_compress.compress.console import console
from edge_compress.compress.run.measure import onnx_runner
from edge_compress.export.timing import round_robin, summarize, time_calls
from transformers import AutoTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs=2, type=Path, help="two OUT folders of compress run (labelled by their folder names)")
    parser.add_argument("--eval-csv", type=Path, required=True, help="texts to time on (column `text`)")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    with args.eval_csv.open(newline="") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)][:args.samples]
    runners = {}
    for out in args.runs:
        report = json.loads((out / "report.json").read_text())
        tokenizer = AutoTokenizer.from_pretrained(out / report["variants"][0]["path"])
        feeds = [dict(tokenizer([t], truncation=True, max_length=128, return_tensors="np")) for t in texts]
        for v in report["variants"]:
            if v.get("error") is None:
                runners[(out.name, v["name"])] = (onnx_runner(out / v["path"] / "model.onnx", args.threads), feeds)
    blocks = {key: (lambda run=run, feeds=feeds: lambda: {"single": time_calls(run, feeds, 10)})
              for key, (run, feeds) in runners.items()}
    samples = round_robin(blocks, args.rounds)
    for key, per_round in samples.items():
        latency = summarize([s["single"] for s in per_round], 1, 0.0)
        low, high = latency.spread
        console.print(f"{key[0]:>18}  {key[1]:<22} p50 {latency.p50:6.2f} ms  rounds {low:.2f}-{high:.2f}")


if __name__ == "__main__":
    main()
