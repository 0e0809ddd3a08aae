"""Which token ids a trimmed vocabulary keeps: what the corpus uses, plus a safety set.

The safety set is what keeps every other text tokenizable and the model's special ids valid: all added and
special tokens (and the ids the post-processor, padding and model config name), the model's basic pieces
(single characters, byte pieces, unknown token: `compress.trim.kinds`), and the ``keep_top_n`` most frequent
pieces of the original vocabulary; then whatever those need to be produced (BPE merge parts).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from tokenizers import Tokenizer

from compress.trim.kinds import kind_of
from compress.trim.tokenizer_json import referenced_ids


def corpus_ids(data: dict[str, Any], texts: Sequence[str]) -> set[int]:
    """Every id the tokenizer produces on ``texts``, special tokens included, with no truncation.

    Encodes with a fresh `tokenizers.Tokenizer` built from ``data``, so the caller's tokenizer (whose saved
    padding/truncation state must stay untouched) is never called."""
    backend = Tokenizer.from_str(json.dumps(data))
    backend.no_padding()
    backend.no_truncation()
    return {i for encoding in backend.encode_batch(list(texts)) for i in encoding.ids}


def choose_ids(data: dict[str, Any], used: Iterable[int], keep_top_n: int, extra: Iterable[int] = ()) -> list[int]:
    """Sorted old ids to keep: ``used`` (corpus ids), ``extra`` (ids the model config names) and the safety set."""
    model = data["model"]
    kind = kind_of(model)
    keep = set(used) | set(extra) | referenced_ids(data) | kind.basic(model) | set(kind.ranked(model)[:keep_top_n])
    return sorted(kind.closure(model, keep))
