"""Translation benchmark: one `compress run --task translation` on a local seq2seq checkpoint, every variant, with
`model.generate` (PyTorch fp32, greedy, batch 1) timed beside it as the anchor.

  model  a local checkpoint folder (e.g. an opus-mt-en-de Marian saved with save_pretrained). No pretrained
         translation model installs offline from PyPI here (searched the package lists for opus-mt / marian /
         t5-small / translation / argos / nllb / m2m100 / helsinki: only packages that download weights at run
         time), and no parallel-corpus package does either (parallel corpus / europarl / tatoeba / wmt / iwslt /
         flores / multi30k / tmx / comtrans: parallel-corpus-mnbvc 1.0.8 ships alignment code and a downloader,
         nltkdata 0.0.1 is an empty placeholder, pymmep 0.2.0 is reader code only, tatoebatools and
         kabyle-corpus-toolkit download from Tatoeba). The real EN-DE text that *is* here is Debian's gettext
         catalogues, so the figure comes from a small Marian trained from scratch on them:
           python bench/gettext_pairs.py runs/mt-corpus            # ~17,700 UI-message pairs, ~600 held out
           python bench/train_marian.py runs/mt-corpus runs/marian-gettext --minutes 30
           python bench/bench_translation.py runs/marian-gettext --data runs/mt-corpus
         --tiny instead trains the test suite's tiny Marian for --train-seconds on calib_data/translation
         (a smoke run of the protocol, not a figure)
  data   --data DIR with eval.tsv (scored; the first --samples timed) and train.tsv (calibration); default
         calib_data/translation (138 project-written EN-DE eval pairs, 556 train)
  run    python bench/bench_translation.py MODEL [--data DIR] [--threads 2] [--beams 1] [--out runs/bench-mt]

Targets (issue 14): int8 BLEU drop <= 0.5 at >= 2x faster per sentence than PyTorch fp32.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from edge_compress.compress.console import console
from edge_compress.compress.recipe import Recipe
from edge_compress.compress.run.pipeline import RunOptions, run
from rich.table import Table

DATA = ROOT / "calib_data" / "translation"


def generate_anchor(model_dir: Path, data: Path, threads: int, beams: int, samples: int, max_new_tokens: int) -> float:
    """Median ms per sentence of transformers' own `model.generate` at batch 1 on the eval sources."""
    import csv

    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    torch.set_num_threads(threads)
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with (data / "eval.tsv").open(encoding="utf-8") as handle:
        sources = [r["source"] for r in csv.DictReader(handle, delimiter="\t")][:samples]
    times = []
    with torch.inference_mode():
        for i, text in enumerate(sources):
            batch = tokenizer([text], return_tensors="pt")
            start = time.perf_counter()
            model.generate(**batch, max_new_tokens=max_new_tokens, num_beams=beams, do_sample=False)
            if i >= 2:  # the first calls warm up
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def tiny_marian(folder: Path, seconds: float) -> Path:
    from test_translation_task import build_model, build_tokenizer, read_pairs, train

    pairs = read_pairs("train.tsv")
    tokenizer = build_tokenizer(pairs)
    model = build_model("marian", len(tokenizer))
    train(model, tokenizer, pairs, seconds)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", type=Path)
    parser.add_argument("--tiny", action="store_true", help="no model: the tests' tiny Marian (smoke run)")
    parser.add_argument("--train-seconds", type=float, default=30.0)
    parser.add_argument("--data", type=Path, default=DATA, help="folder with eval.tsv and train.tsv (source, target)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beams", type=int, default=1)
    parser.add_argument("--samples", type=int, default=50, help="sentences timed per round")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-mt")
    args = parser.parse_args()
    scratch = tempfile.TemporaryDirectory()
    if args.model is None:
        if not args.tiny:
            parser.error("give a MODEL folder, or --tiny")
        args.model = tiny_marian(Path(scratch.name), args.train_seconds)
    recipe = Recipe.model_validate({"task": "translation",
                                    "validate": {"threads": args.threads, "latency_samples": args.samples},
                                    "translation": {"num_beams": args.beams, "max_new_tokens": args.max_new_tokens}})
    report = run(RunOptions(str(args.model), args.out, str(args.data / "eval.tsv"), calib_data=str(args.data / "train.tsv"),
                            force=True, command=" ".join(sys.argv)), recipe)
    anchor = generate_anchor(args.model, args.data, args.threads, args.beams, args.samples, args.max_new_tokens)
    base = report["baseline"]
    table = Table(title=f"translation: {args.model} ({args.threads} threads, {args.beams} beam(s))")
    for column in ("model", "BLEU", "Δ BLEU", "chrF", "same as float %", "ms/sentence", "vs torch", "vs generate()", "encoder ms",
                   "decode ms/token", "encoder MB", "decoder MB"):
        table.add_column(column, justify="left" if column == "model" else "right")
    base_ms = base["metrics"]["ms_per_sentence"]
    table.add_row("model.generate (anchor)", "", "", "", "", f"{anchor:.1f}", f"{base_ms / anchor:.2f}x", "1.00x", "", "",
                  "", "")
    for entry in [base, *report["variants"]]:
        if entry.get("error"):
            table.add_row(entry["name"], "failed", entry["error"][:40], *[""] * 9)
            continue
        m, components = entry["metrics"], (entry.get("settings") or {}).get("components", {})
        table.add_row(entry["name"], f"{m['bleu']:.2f}", f"{m['bleu'] - base['metrics']['bleu']:+.2f}", f"{m['chrf']:.2f}",
                      f"{m.get('exact_match_vs_float', 100):.1f}", f"{m['ms_per_sentence']:.1f}",
                      f"{base_ms / m['ms_per_sentence']:.2f}x", f"{anchor / m['ms_per_sentence']:.2f}x", f"{m['encoder_ms']:.2f}", f"{m['decode_ms_per_token']:.2f}",
                      f"{components.get('encoder', 0) / 1e6:.1f}", f"{components.get('decoder', 0) / 1e6:.1f}")
    console.print(table)
    (args.out / "bench_translation.json").write_text(json.dumps({"generate_ms_per_sentence": anchor, "report": "report.json"}))


if __name__ == "__main__":
    main()
