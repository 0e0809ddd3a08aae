"""Validate a causal LM (PyTorch, or an ONNX decoder on `export.ort_lm.OnnxCausalLM`: same calls).

Perplexity, agreement, generation, speed:

- Perplexity: the eval texts joined by blank lines, tokenized once, scored with
  sliding windows of `context` tokens moved by `stride`; every token is scored once,
  with at least `context - stride` tokens of history (except at the start).  A model
  whose tokenizer starts every text with BOS (Gemma, Llama, ...) sees BOS first in
  every window too (BOS + `context - 1` text tokens): mid-stream windows without it
  are out of distribution for such models (Gemma 3 270M: perplexity x20).  Tokenizers
  that add no BOS (GPT-2) get plain windows, as before.
- Agreement: top-1 next-token prediction at every scored position vs the float model.
- Greedy exact match: the same `new_tokens` greedy tokens as the float model, per prompt.
- Speed at batch 1: time to first token (prefill) and per-token decode time, taken
  from greedy generation itself (a streamer timestamps each token); decode at
  `batch_size` prompts for latency_ms_batch.  `score` is untimed; `timing` returns the
  block the run's interleaved rounds call once per model per round.
"""
from __future__ import annotations

import contextlib
import itertools
import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import transformers
from edge_compress.compress.console import progress
from edge_compress.compress.errors import CompressError
from edge_compress.compress.report.analysis import generation_analysis
from edge_compress.compress.report.noise import perplexity_noise
from edge_compress.compress.report.schema import Analysis, Noise
from edge_compress.compress.tasks.base import Scored
from edge_compress.compress.tasks.causal_lm.spec import LMSpec
from edge_compress.export.timing import Block, RoundLatency
from transformers import PreTrainedTokenizerBase
from transformers.generation.streamers import BaseStreamer


@dataclass
class LMOutputs:
    nll: float                    # summed over scored tokens
    scored: int
    predictions: np.ndarray       # top-1 next token at each scored position
    generations: list[list[int]]  # greedy new tokens per prompt (empty when not generated, e.g. a packaged model)
    window_nll: np.ndarray | None = None      # summed NLL per perplexity window (the report's paired bootstrap)
    window_tokens: np.ndarray | None = None   # tokens scored per window


class _Clock(BaseStreamer):
    """generate() hands the streamer the prompt, then each new token: timestamps of those calls."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, value) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


class LMEvaluation:
    """Token windows and prompts built once, so every variant sees identical inputs."""

    def __init__(self, texts: list[str], tokenizer: PreTrainedTokenizerBase, spec: LMSpec, max_positions: int | None) -> None:
        if max_positions and spec.context > max_positions:
            raise CompressError(f"perplexity context {spec.context} is longer than the model's {max_positions} positions",
                                f"set lm.context to at most {max_positions} in the recipe")
        if max_positions and spec.prompt_tokens + spec.new_tokens > max_positions:
            raise CompressError(f"prompts of {spec.prompt_tokens} tokens plus {spec.new_tokens} new tokens exceed the model's "
                                f"{max_positions} positions", "lower lm.prompt_tokens or lm.new_tokens in the recipe")
        self.spec, self.tokenizer = spec, tokenizer
        bos = leading_bos(tokenizer)
        # With a BOS model the stream holds text tokens only and each window gets BOS in front.
        self.prefix = torch.tensor([bos] if bos is not None else [], dtype=torch.long)
        ids = tokenizer("\n\n".join(texts), return_tensors="pt", add_special_tokens=bos is None)["input_ids"][0]
        self.ids = ids[:spec.max_eval_tokens] if spec.max_eval_tokens else ids
        if len(self.ids) + len(self.prefix) < 2:
            raise CompressError("the eval text is shorter than two tokens, so there is nothing to score",
                                "give more eval text (a .txt file with paragraphs, or JSONL rows with a 'text' field)")
        span = spec.context - len(self.prefix)
        self.windows = _windows(len(self.ids), span, min(spec.stride, span))
        encoded = [tokenizer(t, return_tensors="pt")["input_ids"][0] for t in texts]
        self.prompts = [e[:spec.prompt_tokens] for e in encoded if len(e) >= spec.prompt_tokens][:spec.prompts]
        if not self.prompts:
            self.prompts = [torch.cat([self.prefix, self.ids])[:spec.prompt_tokens]]
        self.batch_size = spec.batch_size
        self.seq_len = self.batch_seq_len = float(np.mean([len(p) for p in self.prompts]))

    def score(self, model, label: str, generate: bool = True) -> Scored:
        window_nll, window_tokens, predictions = self._score(model, label)
        generations = self._generate_each(model, label)[0] if generate else []
        return Scored(LMOutputs(float(window_nll.sum()), int(window_tokens.sum()), predictions, generations, window_nll,
                                window_tokens))

    def details(self, scored: Scored, baseline: Scored | None, examples: int) -> tuple[Noise | None, Analysis | None]:
        """Noise of the perplexity change (windows resampled in pairs) and the prompts whose greedy continuation
        diverges from the float model's, earliest divergence first."""
        if baseline is None:
            return None, None
        out, base = scored.outputs, baseline.outputs
        noise = perplexity_noise(out.window_nll, base.window_nll, out.window_tokens)
        prompts = [self.tokenizer.decode(p, skip_special_tokens=True) for p in self.prompts]
        analysis = generation_analysis(out.generations, base.generations, prompts,
                                       lambda ids: self.tokenizer.decode(ids, skip_special_tokens=True), examples)
        return noise, analysis

    def metrics(self, scored: Scored, baseline: Scored | None) -> tuple[dict[str, float], None]:
        metrics = lm_metrics(scored.outputs, None if baseline is None else baseline.outputs)
        return {k: round(v, 4) for k, v in metrics.items()}, None

    def timing(self, model) -> Block:
        """Batch 1: greedy generation of every prompt (ms per decode step, time to first token); then `batch_size` prompts."""
        def block() -> dict[str, list[float]]:
            _, ttft, steps = self._generate_each(model, "timing", warm=True)
            return {"single": steps, "batch": self._generate_batch(model), "ttft": ttft}
        return block

    def timing_metrics(self, single: RoundLatency, batch: RoundLatency, extras: dict[str, float]) -> dict[str, float]:
        result = {"decode_ms_per_token": round(single.p50, 4), "tokens_per_s": round(1000.0 / single.p50, 4),
                  "tokens_per_s_batch": round(batch.batch_size * 1000.0 / batch.p50, 4)}
        return {**({"ttft_ms": round(extras["ttft"], 4)} if "ttft" in extras else {}), **result}

    def _score(self, model, label: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        totals, counts, predictions = [], [], []
        with progress() as bar, torch.inference_mode():
            task = bar.add_task(f"{label}: perplexity", total=len(self.windows))
            for begin, end, new in self.windows:
                x = torch.cat([self.prefix, self.ids[begin:end]])[None]
                logits = model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0].float()
                n = min(new, x.shape[1] - 1)
                pred = logits[-n - 1:-1]
                totals.append(torch.nn.functional.cross_entropy(pred, x[0, -n:], reduction="sum").item())
                counts.append(n)
                predictions.append(pred.argmax(-1).numpy())
                bar.advance(task)
        return np.asarray(totals, dtype=np.float64), np.asarray(counts, dtype=np.int64), np.concatenate(predictions)

    def _generate_each(self, model, label: str, warm: bool = False) -> tuple[list[list[int]], list[float], list[float]]:
        if warm:
            _greedy(model, self.prompts[0][None], self.spec.new_tokens, self.tokenizer.pad_token_id)
        generations, ttft, steps = [], [], []
        with progress() as bar:
            task = bar.add_task(f"{label}: greedy generation", total=len(self.prompts))
            for prompt in self.prompts:
                tokens, start, times = _greedy(model, prompt[None], self.spec.new_tokens, self.tokenizer.pad_token_id)
                generations.append(tokens[0])
                ttft.append((times[1] - start) * 1000)
                steps += [(b - a) * 1000 for a, b in itertools.pairwise(times[1:])]
                bar.advance(task)
        return generations, ttft, steps

    def _generate_batch(self, model) -> list[float]:
        prompts = [self.prompts[i % len(self.prompts)] for i in range(self.spec.batch_size)]
        batch = self.tokenizer.pad({"input_ids": [p.tolist() for p in prompts]}, padding=True, return_tensors="pt")
        _, _, times = _greedy(model, batch["input_ids"], self.spec.new_tokens, self.tokenizer.pad_token_id,
                              batch["attention_mask"])
        return [(b - a) * 1000 for a, b in itertools.pairwise(times[1:])]


def leading_bos(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The BOS id when the tokenizer puts it in front of every text by default (Gemma, Llama), else None (GPT-2)."""
    bos = tokenizer.bos_token_id
    if bos is None:
        return None
    ids = tokenizer("a")["input_ids"]
    return bos if ids and ids[0] == bos else None


def _windows(length: int, context: int, stride: int) -> list[tuple[int, int, int]]:
    """(begin, end, tokens new to this window) covering [0, length) with each token scored once."""
    windows, previous_end = [], 0
    for begin in range(0, length, stride):
        end = min(begin + context, length)
        windows.append((begin, end, end - previous_end))
        previous_end = end
        if end == length:
            break
    return windows


def _greedy(model, ids: torch.Tensor, new_tokens: int, pad_id: int | None,
            mask: torch.Tensor | None = None) -> tuple[list[list[int]], float, list[float]]:
    clock = _Clock()
    mask = torch.ones_like(ids) if mask is None else mask
    with _quiet_generation(), torch.inference_mode():
        start = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False, num_beams=1, pad_token_id=pad_id, streamer=clock)
    return out[:, ids.shape[1]:].tolist(), start, clock.times


@contextlib.contextmanager
def _quiet_generation():
    """Sampling settings in a checkpoint's generation_config warn when we decode greedily; that is intended."""
    previous = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(previous)


def lm_metrics(outputs: LMOutputs, baseline: LMOutputs | None) -> dict[str, float]:
    nll = outputs.nll / outputs.scored
    if not math.isfinite(nll):
        raise CompressError("the model produced NaN or infinite log-probabilities",
                            "the variant is numerically broken; exclude it or check the checkpoint's weights")
    result = {"perplexity": math.exp(nll), "nll_per_token": nll, "eval_tokens": float(outputs.scored)}
    if baseline is not None:
        result["agreement"] = float(np.mean(outputs.predictions == baseline.predictions) * 100)
        if outputs.generations:
            same = [a == b for a, b in zip(outputs.generations, baseline.generations)]
            result["greedy_exact_match"] = float(np.mean(same) * 100)
        result["perplexity_change_pct"] = (result["perplexity"] / math.exp(baseline.nll / baseline.scored) - 1) * 100
    return result
