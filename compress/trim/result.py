"""`TrimResult`: what a trim kept, what it saved, and how often other text falls back, for the report."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tokenizers import Encoding, Tokenizer


def _by_word(encoding: Encoding, new_id: dict[int, int] | None = None) -> dict[int | None, list[int]]:
    """Ids grouped by the pre-tokenizer's word (both tokenizers share it, so words line up); old ids are
    renumbered into the trimmed numbering (-1 for a dropped id) when ``new_id`` is given."""
    words: dict[int | None, list[int]] = {}
    for word, i in zip(encoding.word_ids, encoding.ids, strict=True):
        words.setdefault(word, []).append(i if new_id is None else new_id.get(i, -1))
    return words


@dataclass(frozen=True)
class TrimResult:
    """``kept_ids``: old ids in new order (new id ``n`` was old id ``kept_ids[n]``).  ``vocab_before`` is the
    embedding's rows before; parameter counts are of the whole model (a tied head counted once).
    ``corpus_fallback_rate`` is `fallback_rate` on the corpus itself, 0.0 by construction (a check)."""

    kind: str
    kept_ids: list[int]
    vocab_before: int
    corpus_texts: int
    corpus_ids: int
    keep_top_n: int
    params_before: int
    params_after: int
    original: Tokenizer = field(repr=False, compare=False)
    trimmed: Tokenizer = field(repr=False, compare=False)
    tokenizer: Any = field(repr=False, compare=False)  # the trimmed transformers tokenizer, to save beside the model
    corpus_fallback_rate: float = 0.0

    @property
    def vocab_after(self) -> int:
        return len(self.kept_ids)

    @property
    def kept_fraction(self) -> float:
        return self.vocab_after / self.vocab_before

    def fallback_rate(self, texts: Sequence[str]) -> float:
        """Share of the original tokens of ``texts`` (special tokens aside) that the trimmed tokenizer does not
        reproduce: every token of a word whose ids differ, i.e. the words that need pieces the corpus never used."""
        new_id = {old: new for new, old in enumerate(self.kept_ids)}
        total = changed = 0
        texts = list(texts)
        before = self.original.encode_batch(texts, add_special_tokens=False)
        after = self.trimmed.encode_batch(texts, add_special_tokens=False)
        for b, a in zip(before, after, strict=True):
            trimmed_words = _by_word(a)
            for word, ids in _by_word(b, new_id).items():
                total += len(ids)
                changed += len(ids) if trimmed_words.get(word) != ids else 0
        return changed / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures for reports (the id list left out: it is as long as the vocabulary)."""
        return {"kind": self.kind, "vocab_before": self.vocab_before, "vocab_after": self.vocab_after,
                "kept_fraction": round(self.kept_fraction, 4), "corpus_texts": self.corpus_texts, "corpus_ids": self.corpus_ids,
                "keep_top_n": self.keep_top_n, "params_before": self.params_before, "params_after": self.params_after,
                "corpus_fallback_rate": self.corpus_fallback_rate}
