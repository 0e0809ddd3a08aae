"""Run a KV-cache decoder graph: our own small generation loop on plain ONNX Runtime, and the same loop through
`transformers.exporters.ExportedModel`.

`OnnxCausalLM` is what timing, perplexity and `compress generate` use: one session with pinned threads, the cache
fed back by name (each output `cache.X` is the next step's input `past_key_values.X`), a prefill on zero-length past
tensors, positions from the attention mask (left padding gives the positions `generate()` gives), greedy decoding or
sampling (temperature, top-k, top-p).  Its `generate` takes the keyword arguments of transformers' `generate` that the
callers pass, and calls a streamer the same way (the prompt first, then each new token), so PyTorch and ONNX models
go through one evaluation.  Hand-written because transformers 5 has no ONNX generation class (optimum's
ORTModelForCausalLM caps transformers below 4.58) and onnxruntime-genai runs its own graph conventions.

`exported_generate` does greedy decoding with an `ExportedModel` (what `ExportedModel.from_pretrained(folder)`
returns): its graph needs every cache tensor even at prefill, so the cache starts as zero-length tensors.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from edge_compress.export.runtime import create_session

PAST_PREFIX, PRESENT_PREFIX = "past_key_values.", "cache."
_FLOAT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def present_name(past: str) -> str:
    """The graph output that feeds `past` at the next step."""
    return PRESENT_PREFIX + past.removeprefix(PAST_PREFIX)


def positions_from_mask(mask: np.ndarray) -> np.ndarray:
    """Position of each token from a left-padded mask: 0 at the first real token; padding gets 1, as generate() does."""
    positions = np.cumsum(mask, axis=1) - 1
    return np.where(mask == 0, 1, positions).astype(np.int64)


class OnnxCausalLM:
    """A KV-cache decoder (ONNX or ORT format) on one ONNX Runtime session."""

    def __init__(self, path: Path, threads: int, eos_token_id: int | list[int] | None = None, config: Any = None,
                 generation_config: Any = None) -> None:
        self.session = create_session(Path(path), threads)
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.pasts = [i for i in self.session.get_inputs() if i.name.startswith(PAST_PREFIX)]
        if not self.pasts:
            raise ValueError(f"{Path(path).name} takes no {PAST_PREFIX}* inputs: not a KV-cache decoder")
        self.outputs = ["logits", *(present_name(i.name) for i in self.pasts)]
        self.config, self.generation_config = config, generation_config
        eos = eos_token_id if eos_token_id is not None else getattr(generation_config, "eos_token_id", None)
        self.eos = set(eos if isinstance(eos, (list, tuple)) else [] if eos is None else [eos])

    # --- one graph call -----------------------------------------------------------------------------------------------

    def empty_cache(self, batch: int) -> dict[str, np.ndarray]:
        """Zero-length past tensors: heads and head size are fixed numbers in the graph."""
        return {i.name: np.zeros([batch, i.shape[1], 0, i.shape[3]], _FLOAT_TYPES.get(i.type, np.float32)) for i in self.pasts}

    def feed(self, ids: np.ndarray, mask: np.ndarray, positions: np.ndarray,
             cache: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feed = {"input_ids": ids.astype(np.int64), "attention_mask": mask.astype(np.int64),
                "position_ids": positions.astype(np.int64), **cache}
        return {k: v for k, v in feed.items() if k in self.input_names}

    def step(self, ids: np.ndarray, mask: np.ndarray, positions: np.ndarray,
             cache: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Logits for `ids` after `cache` (mask covers past + new), and the cache that includes them."""
        logits, *presents = self.session.run(self.outputs, self.feed(ids, mask, positions, cache))
        return logits, {i.name: value for i, value in zip(self.pasts, presents)}

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> SimpleNamespace:
        """Logits of a whole sequence (prefill on an empty cache), as a PyTorch model's output has them."""
        ids = input_ids.numpy()
        mask = np.ones_like(ids) if attention_mask is None else attention_mask.numpy()
        logits, _ = self.step(ids, mask, positions_from_mask(mask), self.empty_cache(ids.shape[0]))
        return SimpleNamespace(logits=torch.from_numpy(logits))

    # --- generation ---------------------------------------------------------------------------------------------------

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, max_new_tokens: int = 20,
                 min_new_tokens: int = 0, do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None,
                 top_p: float | None = None, pad_token_id: int | None = None, streamer: Any = None, seed: int | None = None,
                 num_beams: int | None = None) -> torch.Tensor:
        """Prompt + new tokens, [batch, prompt + new]; stops at EOS after `min_new_tokens` (EOS suppressed before).

        Sampling takes top_k / top_p from the folder's generation config when not given, as transformers does."""
        if num_beams not in (None, 1):
            raise ValueError("beam search is not supported: pass num_beams=1")
        ids = input_ids.numpy().astype(np.int64)
        mask = np.ones_like(ids) if attention_mask is None else attention_mask.numpy().astype(np.int64)
        pad = pad_token_id if pad_token_id is not None else min(self.eos, default=0)
        rng = np.random.default_rng(seed)
        sampler = _Sampler(temperature, _setting(top_k, self.generation_config, "top_k", 50),
                           _setting(top_p, self.generation_config, "top_p", 1.0)) if do_sample else None
        if streamer is not None:
            streamer.put(input_ids.cpu())
        positions = positions_from_mask(mask)
        logits, cache = self.step(ids, mask, positions, self.empty_cache(ids.shape[0]))
        done = np.zeros(ids.shape[0], bool)
        new: list[np.ndarray] = []
        for index in range(max_new_tokens):
            scores = logits[:, -1].astype(np.float32)
            if index < min_new_tokens and self.eos:
                scores[:, sorted(self.eos)] = -np.inf
            token = sampler(scores, rng) if sampler else scores.argmax(-1)
            token = np.where(done, pad, token).astype(np.int64)
            new.append(token)
            if streamer is not None:
                streamer.put(torch.from_numpy(token))
            done |= np.isin(token, list(self.eos))
            if done.all() or index == max_new_tokens - 1:
                break
            mask = np.concatenate([mask, np.ones((ids.shape[0], 1), np.int64)], axis=1)
            positions = positions[:, -1:] + 1
            logits, cache = self.step(token[:, None], mask, positions, cache)
        if streamer is not None:
            streamer.end()
        return torch.from_numpy(np.concatenate([ids, np.stack(new, axis=1)], axis=1))


class _Sampler:
    """Temperature, then top-k, then top-p (nucleus) filtering, then one draw per row."""

    def __init__(self, temperature: float, top_k: int, top_p: float) -> None:
        self.temperature, self.top_k, self.top_p = temperature, top_k, top_p

    def __call__(self, scores: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        scores = scores / self.temperature
        if 0 < self.top_k < scores.shape[-1]:
            kth = np.sort(scores, axis=-1)[:, -self.top_k][:, None]
            scores = np.where(scores < kth, -np.inf, scores)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        if self.top_p < 1.0:
            order = np.argsort(-probs, axis=-1)
            ranked = np.take_along_axis(probs, order, -1)
            drop = np.cumsum(ranked, -1) - ranked > self.top_p  # keep the smallest prefix reaching top_p
            np.put_along_axis(probs, order, np.where(drop, 0.0, ranked), -1)
            probs /= probs.sum(-1, keepdims=True)
        return np.array([rng.choice(len(row), p=row) for row in probs])


def _setting(value: Any, generation_config: Any, name: str, default: Any) -> Any:
    if value is not None:
        return value
    found = getattr(generation_config, name, None)
    return default if found is None else found


def load_ort_lm(folder: Path, threads: int, model_file: str = "model.onnx") -> OnnxCausalLM:
    """A variant folder's decoder with its config and generation config (EOS ids, sampling defaults)."""
    from transformers import AutoConfig, GenerationConfig

    folder = Path(folder)
    config = AutoConfig.from_pretrained(folder)
    try:
        generation = GenerationConfig.from_pretrained(folder)
    except OSError:
        generation = GenerationConfig.from_model_config(config)
    return OnnxCausalLM(folder / model_file, threads, config=config, generation_config=generation)


def exported_generate(exported: Any, input_ids: torch.Tensor, max_new_tokens: int,
                      eos_token_id: int | Iterable[int] | None = None) -> torch.Tensor:
    """Greedy tokens from a `transformers.exporters.ExportedModel` of our decoder graph: prompt + new, [1, ...].

    The cache starts as a DynamicCache of zero-length tensors shaped from the graph's own cache inputs."""
    from transformers import DynamicCache

    session = next(iter(exported.runners.values())).session
    pasts = [i for i in session.get_inputs() if i.name.startswith(PAST_PREFIX)]
    cache = DynamicCache()
    for layer in range(len(pasts) // 2):
        key = next(i for i in pasts if i.name == f"{PAST_PREFIX}layers.{layer}.keys")
        empty = torch.zeros(input_ids.shape[0], key.shape[1], 0, key.shape[3])
        cache.update(empty, empty.clone(), layer)
    eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or ())
    ids, step = input_ids, input_ids
    for _ in range(max_new_tokens):
        length = ids.shape[1]
        out = exported(input_ids=step, attention_mask=torch.ones(ids.shape[0], length, dtype=torch.long),
                       position_ids=torch.arange(length - step.shape[1], length)[None].expand(ids.shape[0], -1),
                       past_key_values=cache)
        cache = out.past_key_values
        step = out.logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, step], dim=1)
        if eos and int(step[0, 0]) in eos:
            break
    return ids
