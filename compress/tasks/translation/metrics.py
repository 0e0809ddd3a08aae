"""BLEU and chrF through sacrebleu, and agreement of a variant's translations with the float model's.

sacrebleu is the reference implementation (its default 13a tokenization, exponential smoothing and
chrF with character order 6 and beta 2 are what papers report), so scores are comparable with
published ones. Agreement uses the same two metrics with the float model's outputs as the reference,
plus exact match: int8 decoders that drift usually change a word or two, which BLEU against the float
output shows long before it moves BLEU against human references.
"""
from __future__ import annotations

from collections.abc import Sequence

import sacrebleu
from edge_compress.compress.errors import CompressError


def _check(outputs: Sequence[str], others: Sequence[str], what: str) -> None:
    if len(outputs) != len(others):
        raise CompressError(f"{len(outputs)} translations but {len(others)} {what}",
                            "translate every source sentence exactly once, in order")
    if not outputs:
        raise CompressError("no translations to score", "give at least one source sentence")


def bleu_chrf(outputs: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU and chrF (0-100) of `outputs` against one reference each."""
    _check(outputs, references, "references")
    return {"bleu": float(sacrebleu.corpus_bleu(list(outputs), [list(references)]).score),
            "chrf": float(sacrebleu.corpus_chrf(list(outputs), [list(references)]).score)}


def agreement(outputs: Sequence[str], baseline: Sequence[str]) -> dict[str, float]:
    """Percent of sentences identical to the float model's (after stripping), and BLEU/chrF against them."""
    _check(outputs, baseline, "float-model translations")
    same = sum(o.strip() == b.strip() for o, b in zip(outputs, baseline))
    scores = bleu_chrf(outputs, baseline)
    return {"exact_match_vs_float": 100 * same / len(outputs), "bleu_vs_float": scores["bleu"],
            "chrf_vs_float": scores["chrf"]}


def translation_metrics(outputs: Sequence[str], references: Sequence[str] | None,
                        baseline: Sequence[str] | None) -> dict[str, float]:
    """BLEU/chrF when there are references, agreement when there is a float baseline, or both."""
    result = bleu_chrf(outputs, references) if references is not None else {}
    if baseline is not None:
        result.update(agreement(outputs, baseline))
    if not result:
        raise CompressError("neither references nor float-model translations to compare with",
                            "give eval data with a target column, or run the float model first (agreement only)")
    return result
