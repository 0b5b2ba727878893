"""The statistics of a verdict (docs/methods.md §5): paired comparisons of a finalist with each
baseline, the intersection-union test over baselines, Holm's correction over finalists, and the
difference a verdict of this size could detect.

Validation runs are *paired*: run r of every loss shares its init seed and its batches, so the
difference ``a[r] - b[r]`` cancels what the run shares and the paired t-test is the test of the
design (Welch's unpaired test is shown beside it). A finalist *beats the baselines* only when it
beats each of them: an intersection-union test, whose p-value is the largest of its p-values
against the baselines and needs no correction across baselines. Across finalists the IUT p-values
are Holm-adjusted, a missing p-value counting as 1. Beside each one-sided test stand one-sided
bounds at the test's level: the lower bound is above 0 exactly when the test passes, the upper
bound is the largest lead the runs do not rule out (together: the two-sided ``1 - 2 level``
interval).

What a verdict can resolve is planned before it trains (:func:`joint_detectable`): the lead over
*every* baseline that all the tests find with 80% probability, for an assumed spread of paired
differences (noncentral t; the joint power bounded below by the product of the tests' powers).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats
from scipy.stats import kendalltau


def welch_greater(a: np.ndarray, b: np.ndarray) -> float:
    """One-sided Welch t-test p-value for mean(a) > mean(b); NaN with fewer than 2 values each."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


@dataclass(frozen=True)
class Comparison:
    """A loss against one baseline over their matched runs (both finished, same run index)."""

    baseline: str
    n: int  # matched runs
    difference: float  # mean paired difference, loss - baseline
    lower: float  # one-sided (1 - level) t bounds: lower > 0 exactly when p < level; upper: the
    upper: float  # largest lead the runs do not rule out
    sd: float  # standard deviation of the paired differences (0: the runs are identical)
    p: float  # one-sided paired t-test, H1: the loss is better (NaN: fewer than 2 pairs)
    p_welch: float  # one-sided Welch test on the same runs, unpaired
    p_signflip: float  # exact one-sided sign-flip test of the paired differences (no normality)
    correlation: float  # Pearson r of the pairs (how much the pairing removes)
    level: float  # of the test and its bounds

    @property
    def identical(self) -> bool:
        """Every paired difference is 0: the loss trained exactly like the baseline."""
        return self.n >= 2 and self.sd == 0 and self.difference == 0


def compare(loss: Mapping[int, float], baseline: Mapping[int, float], name: str, level: float) -> Comparison:
    """``loss`` against ``baseline`` (accuracy per run index) over the runs both finished, tested
    and bounded one-sided at ``level``."""
    runs = sorted(set(loss) & set(baseline))
    a = np.array([loss[r] for r in runs], dtype=np.float64)
    b = np.array([baseline[r] for r in runs], dtype=np.float64)
    n = len(runs)
    if n < 2:
        nan = math.nan
        difference = float(a[0] - b[0]) if n else nan
        return Comparison(name, n, difference, nan, nan, nan, nan, nan, nan, nan, level)
    d = a - b
    sd = float(np.std(d, ddof=1))
    half = float(stats.t.ppf(1 - level, n - 1)) * sd / math.sqrt(n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p = float(stats.ttest_rel(a, b, alternative="greater").pvalue)
        r = float(np.corrcoef(a, b)[0, 1]) if np.std(a) > 0 and np.std(b) > 0 else math.nan
    return Comparison(
        name,
        n,
        float(d.mean()),
        float(d.mean()) - half,
        float(d.mean()) + half,
        sd,
        p,
        welch_greater(a, b),
        sign_flip_greater(d),
        r,
        level,
    )


@dataclass(frozen=True)
class TestSetSampling:
    """The paired lead's one-sided bounds when the test images are a sample too: the runs' variance
    of the lead plus the images' (``images_share``: the part of the bounds' distance from the lead
    the images add; 0 when they add nothing)."""

    lower: float
    upper: float
    images_share: float
    images: int


def with_test_set(
    hits_a: Sequence[np.ndarray], hits_b: Sequence[np.ndarray], level: float
) -> TestSetSampling | None:
    """The lead of ``a`` over ``b`` (per-image correctness of matched runs, the same test images in
    every run) with both sources of its uncertainty. Its variance is the runs' (the per-run leads'
    variance over the runs, as the paired t-interval has it) plus the images' (the per-image mean
    differences' variance over the images: which images happened to be in the test split; every
    run shares them, so they do not average out over runs). The one-sided bounds at ``level`` use
    the t quantile of the runs, as the paired test does. None without two matched runs of equal
    length."""
    runs = len(hits_a)
    if runs < 2 or len(hits_b) != runs or len({len(h) for h in (*hits_a, *hits_b)}) != 1:
        return None
    d = np.stack(hits_a).astype(np.float64) - np.stack(hits_b).astype(np.float64)  # [runs, images]
    images = d.shape[1]
    if images < 2:
        return None
    per_run, per_image = d.mean(axis=1), d.mean(axis=0)
    se_runs = float(per_run.std(ddof=1)) / math.sqrt(runs)
    se_images = float(per_image.std(ddof=1)) / math.sqrt(images)
    se = math.hypot(se_runs, se_images)
    half = float(stats.t.ppf(1 - level, runs - 1)) * se
    mean = float(per_run.mean())
    share = 1.0 - se_runs / se if se > 0 else 0.0
    return TestSetSampling(mean - half, mean + half, share, images)


def sign_flip_greater(d: np.ndarray) -> float:
    """The exact one-sided sign-flip test that the paired differences ``d`` have a positive mean:
    the share of the 2^n sign assignments whose mean is at least the observed one (scipy's
    permutation test on one sample; exact up to 16 pairs). Its smallest value is 1/2^n."""
    if len(d) < 2:
        return math.nan
    exact = len(d) <= 16
    result = stats.permutation_test(
        (d,),
        np.mean,
        permutation_type="samples",
        alternative="greater",
        n_resamples=np.inf if exact else 100_000,
        random_state=0,
    )
    return float(result.pvalue)


def smallest_sign_flip_p(n: int) -> float:
    """The smallest p an exact sign-flip test over ``n`` pairs can give."""
    return 0.5**n


def detectable_difference(n: int, sd: float, level: float, power: float = 0.8) -> float:
    """The true mean difference a one-sided paired t-test at ``level`` over ``n`` pairs detects with
    probability ``power`` when the differences' standard deviation is ``sd``: the δ with
    ``P(T > t_crit) = power`` for ``T`` noncentral t with ``n - 1`` degrees of freedom and
    noncentrality ``δ √n / sd``."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    if sd == 0:
        return 0.0
    df = n - 1
    critical = float(stats.t.ppf(1 - level, df))

    def shortfall(delta: float) -> float:
        return float(stats.nct.sf(critical, df, delta * math.sqrt(n) / sd)) - power

    # Bracket the root: with one degree of freedom and a small level the noncentral t has tails so
    # heavy that the power reaches 80% only far beyond the critical value; widen until it does.
    high = sd * (critical + 10.0) / math.sqrt(n)
    for _ in range(60):
        if shortfall(high) > 0:
            return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-12 * max(1.0, high)))
        high *= 2.0
    return math.inf  # beyond any difference accuracy can show


def joint_detectable(n: int, spreads: Sequence[float], level: float, power: float = 0.8) -> float:
    """The lead over every baseline that ``len(spreads)`` one-sided paired t-tests at ``level`` over
    ``n`` pairs all find with probability at least ``power``, when the paired differences against
    baseline j have standard deviation ``spreads[j]``. The tests share the finalist's runs, so they
    are positively dependent and their joint power is at least the product of their powers
    (Slepian's inequality for the normal case); each is sized to ``power ** (1/k)``. A Monte Carlo
    in the tests checks how close this bound is."""
    if not spreads:
        return math.nan
    each = power ** (1.0 / len(spreads))
    return max(detectable_difference(n, sd, level, each) for sd in spreads)


def intersection_union(p_values: Sequence[float]) -> float:
    """The p-value of "better than every baseline": the largest of the p-values against each (a
    missing one counts as 1)."""
    if not p_values:
        return math.nan
    return max(1.0 if math.isnan(p) else p for p in p_values)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values; a missing (NaN) p-value counts as 1 (it is adjusted to 1
    and still counts among the hypotheses)."""
    filled = [1.0 if math.isnan(p) else p for p in p_values]
    order = sorted(range(len(filled)), key=lambda i: filled[i])
    adjusted = [1.0] * len(filled)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(filled) - rank) * filled[i]))
        adjusted[i] = running
    return adjusted


# Kendall's τ: how far one ranking of losses agrees with another (the verdict's faithfulness; a
# study's settings, lossevo.analysis.rank_correlation).
@dataclass
class Tau:
    tau: float  # NaN when fewer than 2 losses are shared (or all tie)
    p: float
    n: int  # losses it was computed over


def kendall(a: np.ndarray, b: np.ndarray) -> Tau:
    """τ-b between two accuracy vectors over the entries finite in both."""
    both = np.isfinite(a) & np.isfinite(b)
    n = int(both.sum())
    if n < 2:
        return Tau(float("nan"), float("nan"), n)
    result = kendalltau(a[both], b[both])
    return Tau(float(result.statistic), float(result.pvalue), n)
