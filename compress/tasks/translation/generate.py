"""Greedy and beam-search generation over a `Seq2SeqRunner` (numpy only, so the same loop drives PyTorch and ONNX Runtime).

What it honours from the checkpoint's generation config, as `model.generate` does: the decoder start token,
the eos token(s), single-token `bad_words_ids` (Marian bans its pad token), and `forced_eos_token_id` on the
last allowed step.  Greedy is checked token for token against `model.generate` in tests; beam search follows
the usual algorithm (2 x beams candidates per step, finished hypotheses scored by log-probability / length **
length_penalty, stopped when no running beam can beat the worst finished one).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from edge_compress.compress.errors import CompressError
from edge_compress.compress.tasks.translation.runner import Encoded, Seq2SeqRunner, empty_cache


@dataclass(frozen=True)
class Decoding:
    start: int
    eos: tuple[int, ...]
    pad: int
    max_new_tokens: int
    num_beams: int = 1
    length_penalty: float = 1.0
    banned: tuple[int, ...] = ()
    forced_eos: int | None = None


def decoding_from_config(model_config, generation_config, max_new_tokens: int, num_beams: int,
                         length_penalty: float | None = None) -> Decoding:
    """The decoding settings a checkpoint generates with; a missing decoder start token is a CompressError."""
    def read(name):
        value = getattr(generation_config, name, None) if generation_config is not None else None
        return value if value is not None else getattr(model_config, name, None)

    start = read("decoder_start_token_id")
    if start is None:
        raise CompressError(f"the {model_config.model_type} checkpoint has no decoder_start_token_id, so the decoder has "
                            "no first token to start translating from",
                            "set decoder_start_token_id in config.json (Marian and T5: the pad token id; BART: the eos "
                            "token id) or in generation_config.json, and save the checkpoint again")
    eos = read("eos_token_id")
    eos = tuple(eos) if isinstance(eos, (list, tuple)) else ((eos,) if eos is not None else ())
    if not eos:
        raise CompressError(f"the {model_config.model_type} checkpoint has no eos_token_id, so a translation never ends",
                            "set eos_token_id in config.json or generation_config.json")
    pad = read("pad_token_id")
    bad = read("bad_words_ids") or []
    banned = tuple(int(w[0]) for w in bad if len(w) == 1)
    forced = read("forced_eos_token_id")
    forced = (forced[0] if isinstance(forced, (list, tuple)) else forced)
    penalty = length_penalty if length_penalty is not None else (read("length_penalty") or 1.0)
    return Decoding(int(start), tuple(int(e) for e in eos), int(pad if pad is not None else eos[0]), max_new_tokens,
                    num_beams, float(penalty), banned, None if forced is None else int(forced))


def step_scores(logits: np.ndarray, decoding: Decoding, step: int) -> np.ndarray:
    """Log-probabilities with banned tokens removed and, at the last step, only the forced eos allowed."""
    scores = logits.astype(np.float32) - _logsumexp(logits)
    if decoding.banned:
        scores[:, list(decoding.banned)] = -np.inf
    if decoding.forced_eos is not None and step == decoding.max_new_tokens - 1:
        forced = np.full_like(scores, -np.inf)
        forced[:, decoding.forced_eos] = 0.0
        scores = forced
    return scores


def _logsumexp(x: np.ndarray) -> np.ndarray:
    top = x.max(axis=-1, keepdims=True)
    return top + np.log(np.exp(x - top).sum(axis=-1, keepdims=True))


def greedy(runner: Seq2SeqRunner, input_ids: np.ndarray, attention_mask: np.ndarray, decoding: Decoding,
           encoded: Encoded | None = None) -> list[list[int]]:
    """Token ids generated per source row (without the start token, up to and including eos)."""
    encoded = encoded or runner.encode(input_ids, attention_mask)
    batch = input_ids.shape[0]
    tokens = np.full((batch, 1), decoding.start, dtype=np.int64)
    past, out = empty_cache(encoded, batch), [[] for _ in range(batch)]
    done = np.zeros(batch, dtype=bool)
    for step in range(decoding.max_new_tokens):
        logits, past = runner.step(tokens, attention_mask, past, encoded.cross)
        chosen = step_scores(logits, decoding, step).argmax(axis=-1)
        chosen[done] = decoding.pad
        for row in np.flatnonzero(~done):
            out[row].append(int(chosen[row]))
        done |= np.isin(chosen, decoding.eos)
        if done.all():
            break
        tokens = chosen[:, None].astype(np.int64)
    return out


def beam_search(runner: Seq2SeqRunner, input_ids: np.ndarray, attention_mask: np.ndarray, decoding: Decoding) -> list[int]:
    """The best hypothesis for one source (batch 1), beams sharing one decoder call per step."""
    if input_ids.shape[0] != 1:
        raise ValueError("beam search translates one source at a time")
    beams = decoding.num_beams
    encoded = runner.encode(input_ids, attention_mask)
    cross = [np.repeat(t, beams, axis=0) for t in encoded.cross]
    mask = np.repeat(attention_mask, beams, axis=0)
    past = empty_cache(encoded, beams)
    sequences = [[] for _ in range(beams)]
    scores = np.full(beams, -np.inf, dtype=np.float32)
    scores[0] = 0.0                          # all beams start identical: only the first one expands at step 0
    tokens = np.full((beams, 1), decoding.start, dtype=np.int64)
    finished: list[tuple[float, list[int]]] = []
    for step in range(decoding.max_new_tokens):
        logits, past = runner.step(tokens, mask, past, cross)
        total = step_scores(logits, decoding, step) + scores[:, None]
        vocab = total.shape[1]
        flat = total.reshape(-1)
        candidates = np.argsort(-flat, kind="stable")[:2 * beams]
        keep_beam, keep_token, keep_score = [], [], []
        for rank, index in enumerate(candidates):
            beam, token, score = divmod(int(index), vocab) + (float(flat[index]),)
            if not np.isfinite(score):
                break
            if token in decoding.eos:
                if rank < beams:
                    finished.append((score / (step + 1) ** decoding.length_penalty, sequences[beam] + [token]))
                continue
            keep_beam.append(beam)
            keep_token.append(token)
            keep_score.append(score)
            if len(keep_beam) == beams:
                break
        finished.sort(key=lambda f: -f[0])
        finished = finished[:beams]
        if not keep_beam or (len(finished) == beams
                             and max(keep_score) / (step + 1) ** decoding.length_penalty <= finished[-1][0]):
            break
        while len(keep_beam) < beams:    # fewer live candidates than beams (a tiny vocabulary): pad with dead beams
            keep_beam.append(keep_beam[0])
            keep_token.append(keep_token[0])
            keep_score.append(-np.inf)
        order = np.array(keep_beam)
        sequences = [sequences[b] + [t] for b, t in zip(keep_beam, keep_token)]
        scores = np.array(keep_score, dtype=np.float32)
        past = [p[order] for p in past]
        tokens = np.array(keep_token, dtype=np.int64)[:, None]
    else:
        finished += [(float(s) / decoding.max_new_tokens ** decoding.length_penalty, seq)
                     for s, seq in zip(scores, sequences) if np.isfinite(s)]
    if not finished:
        finished = [(float(s), seq) for s, seq in zip(scores, sequences)]
    return max(finished, key=lambda f: f[0])[1]


def translate_ids(runner: Seq2SeqRunner, input_ids: np.ndarray, attention_mask: np.ndarray,
                  decoding: Decoding) -> list[list[int]]:
    """Greedy for any batch; beam search row by row."""
    if decoding.num_beams == 1:
        return greedy(runner, input_ids, attention_mask, decoding)
    return [beam_search(runner, input_ids[i:i + 1], attention_mask[i:i + 1], decoding) for i in range(input_ids.shape[0])]
