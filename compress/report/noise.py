"""How much of an accuracy (or perplexity) change is chance: a seeded paired bootstrap and an exact sign test.

Every variant is scored on the same eval items as the float baseline, so the honest
question is paired: resampling items (texts, or perplexity windows) with replacement
and recomputing both models' metric on the same resample gives the spread of the
*difference*.  On a 350-text set one text is 0.29 points, so "+0.57" is two texts and
usually inside that spread.  Classifiers also get the flip counts (texts the variant
gets right and the baseline wrong, and the other way round) with an exact two-sided
sign test on them (McNemar's exact test), which needs no resampling at all.

Hand-written rather than scipy.stats.bootstrap: scipy is not a dependency, and the
paired statistic for perplexity (a ratio of summed NLL to summed tokens) is five lines.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from edge_compress.compress.report.schema import Noise

RESAMPLES = 2000
SEED = 0
CONFIDENCE = 0.95
_CHUNK = 250


def sign_test(gained: int, lost: int) -> float:
    """Exact two-sided p-value of `gained` vs `lost` flips under 'either direction is equally likely'."""
    n = gained + lost
    if n == 0:
        return 1.0
    k = min(gained, lost)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def _resampled(n: int, statistic: Callable[[np.ndarray], np.ndarray], resamples: int, seed: int) -> np.ndarray:
    """`statistic` of `resamples` index resamples (rows of an int array), drawn in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    values = []
    for start in range(0, resamples, _CHUNK):
        rows = min(_CHUNK, resamples - start)
        values.append(statistic(rng.integers(0, n, size=(rows, n))))
    return np.concatenate(values)


def _interval(values: np.ndarray) -> tuple[float, float]:
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def accuracy_noise(correct: np.ndarray, baseline_correct: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> Noise:
    """Accuracy change in points (variant - baseline) from per-text correctness of both models on the same texts."""
    variant, base = np.asarray(correct, dtype=bool), np.asarray(baseline_correct, dtype=bool)
    diff = variant.astype(np.float64) - base.astype(np.float64)
    low, high = _interval(_resampled(len(diff), lambda idx: diff[idx].mean(axis=1) * 100, resamples, seed))
    gained, lost = int(np.sum(variant & ~base)), int(np.sum(~variant & base))
    return Noise(f"paired bootstrap over eval texts ({resamples} resamples, seed {seed}); exact sign test on flips",
                 round(float(diff.mean() * 100), 4), round(low, 4), round(high, 4), resamples, seed, len(diff),
                 gained, lost, round(sign_test(gained, lost), 4))


def perplexity_noise(nll: np.ndarray, baseline_nll: np.ndarray, tokens: np.ndarray, resamples: int = RESAMPLES,
                     seed: int = SEED) -> Noise:
    """Perplexity change (variant - baseline) from summed NLL per perplexity window and the tokens each scored."""
    nll, base, tokens = (np.asarray(a, dtype=np.float64) for a in (nll, baseline_nll, tokens))

    def change(idx: np.ndarray) -> np.ndarray:
        count = tokens[idx].sum(axis=1)
        return np.exp(nll[idx].sum(axis=1) / count) - np.exp(base[idx].sum(axis=1) / count)

    low, high = _interval(_resampled(len(nll), change, resamples, seed))
    point = math.exp(nll.sum() / tokens.sum()) - math.exp(base.sum() / tokens.sum())
    return Noise(f"paired bootstrap over perplexity windows ({resamples} resamples, seed {seed})", round(point, 4),
                 round(low, 4), round(high, 4), resamples, seed, len(nll))


def change_interval(items: dict, baseline_items: dict, resamples: int = RESAMPLES, seed: int = SEED) -> Noise:
    """The paired-bootstrap change of a search candidate against the float model, from the per-item scores a search
    measure returns: {"correct": 0/1 per text} (accuracy points) or {"nll", "tokens"} per perplexity window."""
    if "nll" in items:
        return perplexity_noise(items["nll"], baseline_items["nll"], items["tokens"], resamples, seed)
    return accuracy_noise(items["correct"], baseline_items["correct"], resamples, seed)


def describe(noise: Noise | None, delta: float, unit: str = "pts") -> str:
    """'within noise' when the interval holds 0, else the signed change with its interval (report wording)."""
    if noise is None:
        return f"{delta:+.2f} {unit}"
    if noise.within_noise:
        return "no change" if noise.low == noise.high == 0 else "within noise"
    return f"{delta:+.2f} {unit} [{noise.low:+.2f}, {noise.high:+.2f}]"


def noise_from_dict(raw: dict | None) -> Noise | None:
    """A serialized `noise` field (report.json) back as a Noise."""
    return Noise(**{k: v for k, v in raw.items() if k != "within_noise"}) if raw else None
