"""Which token ids a trimmed vocabulary keeps: what the corpus uses, plus a safety set.

The safety set is what keeps every other text tokenizable and the model's special ids valid: all added and
special tokens (and the ids the post-processor, padding and model config name), the model's basic pieces
(single characters, byte pieces, unknown token: `compress.trim.kinds`), and the ``keep_top_n`` most frequent
pieces of the original vocabulary (reserved ``[unusedN]`` slots skipped); then whatever those need to be produced (BPE merge parts).
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from edge_compress.compress.trim.kinds import kind_of
from edge_compress.compress.trim.tokenizer_json import referenced_ids
from tokenizers import Tokenizer


def corpus_ids(data: dict[str, Any], texts: Sequence[str]) -> set[int]:
    """Every id the tokenizer produces on ``texts``, special tokens included, with no truncation.

    Encodes with a fresh `tokenizers.Tokenizer` built from ``data``, so the caller's tokenizer (whose saved
    padding/truncation state must stay untouched) is never called."""
    backend = Tokenizer.from_str(json.dumps(data))
    backend.no_padding()
    backend.no_truncation()
    return {i for encoding in backend.encode_batch(list(texts)) for i in encoding.ids}


# Reserved placeholder slots ([unused0]..[unused993] in BERT's vocabularies, <unused0>.. in Gemma's): never produced
# from text (the pre-tokenizer splits the brackets off), so they do not count among the "most frequent" pieces.
RESERVED = re.compile(r"\[unused\d+\]|<unused\d+>")


def top_pieces(model: dict[str, Any], n: int) -> set[int]:
    """The ``n`` most frequent pieces by the model's own ranking (`compress.trim.kinds`), reserved slots skipped."""
    kind = kind_of(model)
    piece = {i: p for p, i in kind.pieces(model).items()}
    return set(itertools.islice((i for i in kind.ranked(model) if not RESERVED.fullmatch(piece.get(i, ""))), n))


def choose_ids(data: dict[str, Any], used: Iterable[int], keep_top_n: int, extra: Iterable[int] = ()) -> list[int]:
    """Sorted old ids to keep: ``used`` (corpus ids), ``extra`` (ids the model config names) and the safety set."""
    model = data["model"]
    kind = kind_of(model)
    keep = set(used) | set(extra) | referenced_ids(data) | kind.basic(model) | top_pieces(model, keep_top_n)
    return sorted(kind.closure(model, keep))
