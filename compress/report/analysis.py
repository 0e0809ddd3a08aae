"""What a model got wrong, from its outputs on the eval set: per-class metrics, confusion, flips against the float model.

Pure functions of predictions and labels, called by each task's evaluation (which holds the
outputs and the eval items) while a variant is scored; the report renders the result.
"""
from __future__ import annotations

import numpy as np
from edge_compress.compress.report.schema import Analysis, ClassMetrics, Flip

EXAMPLES = 10


def confusion(predictions: np.ndarray, labels: np.ndarray, classes: int) -> list[list[int]]:
    """counts[true][predicted]."""
    counts = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predictions)), 1)
    return counts.tolist()


def per_class(predictions: np.ndarray, labels: np.ndarray, names: list[str]) -> list[ClassMetrics]:
    """Precision, recall and F1 in percent per class (0 where undefined), with the number of true texts (support)."""
    rows = []
    for c, name in enumerate(names):
        tp = int(np.sum((predictions == c) & (labels == c)))
        fp = int(np.sum((predictions == c) & (labels != c)))
        fn = int(np.sum((predictions != c) & (labels == c)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        rows.append(ClassMetrics(name, round(precision * 100, 2), round(recall * 100, 2), round(f1 * 100, 2), tp + fn))
    return rows


def classification_analysis(predictions: np.ndarray, baseline: np.ndarray | None, labels: np.ndarray, names: list[str],
                            texts: list[str], examples: int = EXAMPLES) -> Analysis:
    """`baseline`: the float model's predictions on the same texts (None for the baseline itself)."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    flips: list[Flip] = []
    count = 0
    if baseline is not None:
        baseline = np.asarray(baseline)
        changed = np.flatnonzero(predictions != baseline)
        count = len(changed)
        flips = [Flip(int(i), texts[i], names[baseline[i]], names[predictions[i]], label=names[labels[i]])
                 for i in changed[:examples]]
    return Analysis(list(names), per_class(predictions, labels, names), confusion(predictions, labels, len(names)), flips,
                    count, len(predictions) if baseline is not None else 0)


def first_difference(a: list[int], b: list[int]) -> int | None:
    """Index of the first token where two generations differ (None when equal)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def generation_analysis(generations: list[list[int]], baseline: list[list[int]] | None, prompts: list[str],
                        decode, examples: int = EXAMPLES) -> Analysis:
    """Prompts whose greedy continuation differs from the float model's, earliest divergence first (then prompt order)."""
    if baseline is None or not generations:
        return Analysis()
    diverged = [(d, i) for i, (g, b) in enumerate(zip(generations, baseline)) if (d := first_difference(g, b)) is not None]
    diverged.sort()
    flips = [Flip(i, prompts[i], decode(baseline[i]), decode(generations[i]), first_difference=d)
             for d, i in diverged[:examples]]
    return Analysis(flips=flips, flip_count=len(diverged), compared=len(generations))
