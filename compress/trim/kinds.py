"""What trimming needs to know about each `tokenizers` model type: one row per type in `KINDS`.

A row answers, on the ``model`` object of a ``tokenizer.json``:

* ``pieces``: piece -> id of the model's own vocabulary;
* ``basic``: the ids every trimmed vocabulary keeps so that any text still tokenizes through the model's own
  fallback: single characters (WordPiece also ``##c``), byte pieces (``<0xNN>``; byte-level BPE's 256 byte
  symbols are single characters of its alphabet), the unknown token;
* ``ranked``: ids most frequent first, from what the model stores (BPE: merge order; Unigram: score;
  WordPiece stores nothing, so ascending id stands in for frequency);
* ``closure``: the kept set grown by what a kept piece needs to be produced at all (BPE: both parts of every
  merge that yields it, recursively; the others need nothing);
* ``rewrite``: the model object restricted to the kept ids, renumbered by ``new_id``.

Why each rewrite keeps kept pieces tokenizing exactly as before: WordPiece is greedy longest-match, and a
subset vocabulary that still holds the chosen pieces has no longer match; BPE applies the lowest-ranked
applicable merge, and every merge used on a kept word survives (its parts are kept by ``closure``) while
removed merges were not applicable; Unigram's Viterbi path over kept pieces is still the best among fewer
paths, and the lowest-scored piece is kept so the unknown-token penalty (min score - 10) does not move.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge_compress.compress.trim.errors import TrimError

Model = dict[str, Any]
BYTE_PIECE = re.compile(r"<0x[0-9A-Fa-f]{2}>")


@dataclass(frozen=True)
class Kind:
    pieces: Callable[[Model], dict[str, int]]
    basic: Callable[[Model], set[int]]
    ranked: Callable[[Model], list[int]]
    closure: Callable[[Model, set[int]], set[int]]
    rewrite: Callable[[Model, dict[int, int]], Model]


def _is_basic(piece: str, prefix: str = "", suffix: str = "") -> bool:
    """One character (after the model's word-continuation prefix / end-of-word suffix), or a byte piece."""
    if prefix and piece.startswith(prefix) and len(piece) > len(prefix):
        piece = piece[len(prefix):]
    if suffix and piece.endswith(suffix) and len(piece) > len(suffix):
        piece = piece[:-len(suffix)]
    return len(piece) == 1 or BYTE_PIECE.fullmatch(piece) is not None


def _unk(model: Model, vocab: dict[str, int]) -> set[int]:
    unk = model.get("unk_token")
    return {vocab[unk]} if unk in vocab else set()


def _unchanged(model: Model, kept: set[int]) -> set[int]:
    return kept


# WordPiece -------------------------------------------------------------------------------------------------------

def _wp_basic(model: Model) -> set[int]:
    prefix = model.get("continuing_subword_prefix") or ""
    return {i for p, i in model["vocab"].items() if _is_basic(p, prefix)} | _unk(model, model["vocab"])


def _dict_rewrite(model: Model, new_id: dict[int, int]) -> Model:
    return {**model, "vocab": {p: new_id[i] for p, i in model["vocab"].items() if i in new_id}}


# BPE -------------------------------------------------------------------------------------------------------------

def _merge_parts(merge: str | list[str]) -> tuple[str, str]:
    """Both merge formats of tokenizer.json: "a b" (before tokenizers 0.20) and ["a", "b"]."""
    a, b = merge.split(" ", 1) if isinstance(merge, str) else merge
    return a, b


def _merge_result(model: Model, a: str, b: str) -> str:
    """As the BPE model builds it: the right part loses the continuation prefix."""
    prefix = model.get("continuing_subword_prefix") or ""
    return a + (b[len(prefix):] if prefix and b.startswith(prefix) else b)


def _merges(model: Model) -> list[tuple[int, int, int]]:
    """(left id, right id, result id) per merge, in rank order."""
    vocab = model["vocab"]
    out = []
    for merge in model.get("merges", []):
        a, b = _merge_parts(merge)
        out.append((vocab[a], vocab[b], vocab[_merge_result(model, a, b)]))
    return out


def _bpe_basic(model: Model) -> set[int]:
    prefix, suffix = model.get("continuing_subword_prefix") or "", model.get("end_of_word_suffix") or ""
    return {i for p, i in model["vocab"].items() if _is_basic(p, prefix, suffix)} | _unk(model, model["vocab"])


def _bpe_ranked(model: Model) -> list[int]:
    return list(dict.fromkeys(result for _, _, result in _merges(model)))


def _bpe_closure(model: Model, kept: set[int]) -> set[int]:
    producers: dict[int, list[tuple[int, int]]] = {}
    for a, b, result in _merges(model):
        producers.setdefault(result, []).append((a, b))
    kept, todo = set(kept), list(kept)
    while todo:
        for parts in producers.get(todo.pop(), ()):
            for part in parts:
                if part not in kept:
                    kept.add(part)
                    todo.append(part)
    return kept


def _bpe_rewrite(model: Model, new_id: dict[int, int]) -> Model:
    merges = [m for m, (a, b, r) in zip(model.get("merges", []), _merges(model), strict=True)
              if a in new_id and b in new_id and r in new_id]
    return {**_dict_rewrite(model, new_id), "merges": merges}


# Unigram ---------------------------------------------------------------------------------------------------------

def _ug_pieces(model: Model) -> dict[str, int]:
    return {piece: i for i, (piece, _) in enumerate(model["vocab"])}


def _ug_basic(model: Model) -> set[int]:
    scores = [score for _, score in model["vocab"]]
    keep = {i for i, (piece, _) in enumerate(model["vocab"]) if _is_basic(piece)}
    if scores:
        keep.add(scores.index(min(scores)))  # keeps the unknown-token penalty where it was (see module docstring)
    if model.get("unk_id") is not None:
        keep.add(model["unk_id"])
    return keep


def _ug_ranked(model: Model) -> list[int]:
    return sorted(range(len(model["vocab"])), key=lambda i: -model["vocab"][i][1])


def _ug_rewrite(model: Model, new_id: dict[int, int]) -> Model:
    vocab = [entry for i, entry in enumerate(model["vocab"]) if i in new_id]
    unk = model.get("unk_id")
    return {**model, "vocab": vocab, "unk_id": None if unk is None else new_id[unk]}


KINDS: dict[str, Kind] = {
    "WordPiece": Kind(lambda m: dict(m["vocab"]), _wp_basic, lambda m: sorted(m["vocab"].values()), _unchanged, _dict_rewrite),
    "BPE": Kind(lambda m: dict(m["vocab"]), _bpe_basic, _bpe_ranked, _bpe_closure, _bpe_rewrite),
    "Unigram": Kind(_ug_pieces, _ug_basic, _ug_ranked, _unchanged, _ug_rewrite),
}


def kind_of(model: Model) -> Kind:
    """The row for this tokenizer model, or a TrimError naming the ones there are (WordLevel has no fallback)."""
    kind = KINDS.get(model.get("type", ""))
    if kind is None:
        raise TrimError(f"vocabulary trimming does not handle '{model.get('type')}' tokenizers",
                        f"use a checkpoint whose tokenizer.json model is one of {', '.join(KINDS)}, or remove trim: from the recipe")
    return kind
