"""Re-time the distilled pruned variants of a finished bench_prune.py run on a quiet machine (no rebuilding).

    python bench/retime_prune.py --out runs/bench-prune --eval-csv EVAL.csv [--rounds 5]
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
from bench_classifier import interleaved_p50
from edge_compress.compress.run.measure import onnx_runner, torch_runner
from edge_compress.compress.tasks.text_classification.evaluate import ClassifierEvaluation
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-prune"))
    parser.add_argument("--eval-csv", type=Path, required=True)
    parser.add_argument("--model", type=Path, default=Path.home() / ".cache" / "edge-compress" / "bench" / "minilm-rt-3000-2")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    texts = [row["text"] for row in csv.DictReader(args.eval_csv.open())]
    ev = ClassifierEvaluation(texts, AutoTokenizer.from_pretrained(args.model), 128, 32, 200, 10)
    variants = args.out / "distilled" / "variants"
    runners = {"pytorch-fp32": torch_runner(AutoModelForSequenceClassification.from_pretrained(args.model).eval()),
               **{name: onnx_runner(variants / name / "model.onnx", args.threads)
                  for name in ("onnx-fp32", "pruned-onnx-fp32", "pruned-onnx-fp32-optimized", "pruned-onnx-int8-dynamic")}}
    p50 = interleaved_p50(runners, ev.singles, args.rounds)
    for name, ms in p50.items():
        print(f"{name}: {ms:.2f} ms, {p50['pytorch-fp32'] / ms:.2f}x vs torch, {p50['onnx-fp32'] / ms:.2f}x vs onnx-fp32")


if __name__ == "__main__":
    main()
