"""`compress generate OUT_OR_VARIANT "prompt"`: chat with a compressed model, tokens streamed as they come.

Given a run's OUT folder, the report's selected variant is used (else the first
variant that built); given a variant folder, that one.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from edge_compress.compress.errors import CompressError
from edge_compress.export.ort_lm import load_ort_lm
from transformers import AutoTokenizer, TextStreamer


def resolve_variant(path: Path, task: str = "causal-lm") -> Path:
    """A variant folder (holds model.onnx) or the folder the report's selected variant lives in (a `task` run)."""
    if not path.is_dir():
        raise CompressError(f"{path} is not a folder", "pass a `compress run` OUT folder or one of its variants/<name> folders")
    if (path / "model.onnx").exists():
        return path
    report = path / "report.json"
    if not report.exists():
        raise CompressError(f"{path} has neither model.onnx nor report.json", "pass a `compress run` OUT folder or a variant folder")
    data = json.loads(report.read_text())
    if data.get("task") != task:
        raise CompressError(f"{path} holds a '{data.get('task')}' run, not a {task} one", f"run `compress run` with task {task} first")
    built = [v for v in data["variants"] if v.get("error") is None]
    chosen = next((v for v in built if v["name"] == data.get("selected")), built[0] if built else None)
    if chosen is None:
        raise CompressError(f"no variant in {report} was built", "rerun `compress run`; see its report for why the variants failed")
    return path / chosen["path"]


def _check_settings(max_new_tokens: int, threads: int | None, temperature: float) -> None:
    """Checked before the model is loaded: transformers would fail on these with a traceback, or mid-generation."""
    if max_new_tokens < 1:
        raise CompressError(f"--max-new-tokens {max_new_tokens}: must be at least 1", "pass a positive number of tokens, e.g. --max-new-tokens 64")
    if threads is not None and threads < 1:
        raise CompressError(f"--threads {threads}: must be at least 1", "pass a positive thread count, or leave --threads out")
    if not (math.isfinite(temperature) and temperature > 0):
        raise CompressError(f"--temperature {temperature:g}: must be a finite number above 0",
                            "pass e.g. --temperature 0.8 (lower is more deterministic), or drop --sample for greedy decoding")


def generate(path: Path | str, prompt: str, max_new_tokens: int = 64, threads: int | None = None,
             greedy: bool = True, stream: bool = True, temperature: float = 0.8, num_beams: int | None = None) -> str:
    """Generate from `prompt` with a variant (or an OUT folder's selected one); prints tokens as they come when `stream`.
    `num_beams` is for translation (None: as the run decoded); a causal LM decodes greedy or sampled only."""
    _check_settings(max_new_tokens, threads, temperature)
    from edge_compress.compress.tasks.translation.translate import is_translation, translate

    if num_beams is not None and num_beams < 1:
        raise CompressError(f"--beams {num_beams}: must be at least 1", "pass 1 for greedy decoding, or e.g. --beams 4")
    if is_translation(Path(path)):  # a translation run or variant: the prompt is the source sentence
        if not greedy:
            raise CompressError("--sample is for causal LMs: translation decodes greedy or by beam search",
                                "drop --sample; pass --beams N for beam search")
        text = translate(path, prompt, max_new_tokens, threads, num_beams)
        if stream:
            print(text)
        return text
    if num_beams not in (None, 1):
        # The causal-LM ORT loop keeps one cache per sequence and does not reorder it between beams.
        raise CompressError(f"--beams {num_beams} is for translation models: a causal LM decodes greedy or with --sample",
                            "drop --beams, or pass a `compress run --task translation` OUT or variant folder")
    folder = resolve_variant(Path(path))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = load_ort_lm(folder, threads or min(4, os.cpu_count() or 1))
    # A decoder's graph takes input_ids and attention_mask (past and positions are its own); a BERT-style tokenizer
    # also returns token_type_ids, which generate() would feed to a graph that has no such input.
    encoded = tokenizer(prompt, return_tensors="pt")
    inputs = {name: encoded[name] for name in ("input_ids", "attention_mask") if name in encoded}
    length = inputs["input_ids"].shape[1]
    if length == 0:
        raise CompressError("the prompt is empty after tokenization", "give a non-empty prompt")
    limit = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "n_positions", None)
    if limit and length >= limit:
        raise CompressError(f"the prompt is {length} tokens, at least the model's context of {limit} tokens (new ones included)",
                            f"shorten the prompt to well under {limit} tokens (it needs room for --max-new-tokens too)")
    if limit and length + max_new_tokens > limit:
        raise CompressError(f"the prompt ({length} tokens) plus {max_new_tokens} new tokens exceeds the model's context of {limit} tokens",
                            f"lower --max-new-tokens to at most {limit - length}, or shorten the prompt")
    streamer = TextStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True) if stream else None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sampling = {"do_sample": False, "num_beams": 1} if greedy else {"do_sample": True, "temperature": temperature}
    output = model.generate(**inputs, max_new_tokens=max_new_tokens, pad_token_id=pad, streamer=streamer, **sampling)
    return tokenizer.decode(output[0, length:], skip_special_tokens=True)
