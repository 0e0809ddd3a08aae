"""`TrimConfig`: how much of the vocabulary to keep beyond what the corpus uses; checked on construction.

The recipe's `trim:` section embeds this class (`compress.recipe.TrimSpec` adds only which texts are the corpus),
so the default here is the one `compress run` and the library use.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_compress.compress.trim.errors import TrimError


@dataclass(frozen=True)
class TrimConfig:
    """Settings of one `trim` call.

    ``keep_top_n``: the N most frequent tokens of the original vocabulary are kept even if the corpus never
    produces them, so common words outside the corpus still tokenize as before.  "Most frequent" is the
    tokenizer's own ranking (`compress.trim.kinds`): BPE merge order, Unigram scores; WordPiece stores no
    frequencies, so its lowest ids stand in for them (BERT's vocabularies are roughly frequency-ordered after
    the first ~2000 ids of reserved and single-character entries, which the safety set keeps anyway).
    """

    keep_top_n: int = 2000

    def __post_init__(self) -> None:
        if isinstance(self.keep_top_n, bool) or not isinstance(self.keep_top_n, int) or self.keep_top_n < 0:
            raise TrimError(f"trim.keep_top_n must be a whole number >= 0, got {self.keep_top_n!r}",
                            "set keep_top_n to how many of the vocabulary's most frequent tokens to keep (e.g. 2000)")
