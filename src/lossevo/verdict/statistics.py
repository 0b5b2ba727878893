"""The tests a verdict runs: one-sided Welch t-tests and Holm's correction over the finalists."""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import ttest_ind


def welch_greater(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided Welch t-test p-value for mean(a) > mean(b); NaN with fewer than 2 values each."""
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    with warnings.catch_warnings():  # identical runs (a tiny test budget): NaN, not a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN)."""
    finite = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        adjusted[i] = running
    return adjusted
