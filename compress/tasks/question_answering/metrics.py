"""SQuAD exact match and F1, plus span agreement with the float model's answers.

Hand-written (about thirty lines) because neither well-kept implementation can be relied on here:
`evaluate.load("squad")` downloads its metric script from the Hugging Face Hub and fails offline
("Couldn't find a module script at .../squad.py. Module 'squad' doesn't exist on the Hugging Face Hub
either"), and `transformers.data.metrics.squad_metrics` sits in a package that announces its own removal
("This metric will be removed from the library soon, metrics should be handled with the Evaluate
library"), which the move to transformers 5 makes likely. tests/test_question_answering.py checks this
module against that copy while it still imports.

The normalization is the one of the official SQuAD v1.1 evaluation script (`evaluate-v1.1.py`,
`normalize_answer`): lower-case, drop ASCII punctuation (`string.punctuation`), drop the articles
a / an / the as whole words, collapse whitespace. F1 is token overlap of the normalized answers,
best over the reference answers. Empty answers follow the SQuAD v2.0 script: an unanswerable
question (no references) counts as correct exactly when the prediction is empty, too.
"""
from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

from edge_compress.compress.errors import CompressError

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def f1(prediction: str, reference: str) -> float:
    predicted, wanted = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not predicted or not wanted:
        return float(predicted == wanted)
    same = sum((Counter(predicted) & Counter(wanted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(wanted)
    return 2 * precision * recall / (precision + recall)


def _best(score, prediction: str, references: Sequence[str]) -> float:
    return max(score(prediction, r) for r in (list(references) or [""]))


def squad_scores(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Exact match and F1 in percent over the referenced ids; every referenced id needs a prediction."""
    missing = [i for i in references if i not in predictions]
    if missing:
        raise CompressError(f"{len(missing)} questions have no prediction (e.g. {missing[0]})",
                            "predict every question of the eval set; post-processing returns one answer per id")
    if not references:
        raise CompressError("no reference answers to score against", "give eval data with answers, or use agreement only")
    n = len(references)
    return {"exact_match": 100 * sum(_best(exact_match, predictions[i], r) for i, r in references.items()) / n,
            "f1": 100 * sum(_best(f1, predictions[i], r) for i, r in references.items()) / n}


def span_agreement(predictions: Mapping[str, str], baseline: Mapping[str, str]) -> dict[str, float]:
    """How often a variant gives the float model's answer: identical text, and SQuAD F1 against it (percent)."""
    ids = list(baseline)
    if not ids or any(i not in predictions for i in ids):
        raise CompressError("the variant and the float model answered different questions",
                            "run both on the same eval examples")
    return {"agreement_exact": 100 * sum(predictions[i] == baseline[i] for i in ids) / len(ids),
            "agreement_f1": 100 * sum(f1(predictions[i], baseline[i]) for i in ids) / len(ids)}


def qa_metrics(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]] | None,
               baseline: Mapping[str, str] | None) -> dict[str, float]:
    """EM/F1 when there are references, agreement with the float model when there is a baseline, or both."""
    result = squad_scores(predictions, references) if references is not None else {}
    if baseline is not None:
        result.update(span_agreement(predictions, baseline))
    return result
