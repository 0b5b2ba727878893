"""How far a search's cheap ranking can be trusted: Kendall τ between consecutive rungs over the
candidates that reached both, and, where a rung trained several seeds, between two seeds of it
(its test-retest reliability).

A τ is shown with a bootstrap 95% interval (losses resampled with replacement) and only over at
least :data:`MIN_LOSSES` losses: over fewer, τ takes a handful of values and says next to
nothing. Rung 0 is compared on one surrogate: candidates trained on a pre-screen (another
surrogate, another scale) are left out of its comparisons.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from lossevo.results import Status
from lossevo.store.journal import Journal, RungRow
from lossevo.verdict.statistics import Tau, kendall

MIN_LOSSES = 5
BOOTSTRAP = 2000


@dataclass
class Agreement:
    """Kendall τ between two rankings of the same losses, with a bootstrap 95% interval."""

    label: str
    tau: Tau
    low: float = math.nan
    high: float = math.nan


def agreement(a: list[float], b: list[float], label: str, seed: int = 0) -> Agreement:
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    tau = kendall(x, y)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(BOOTSTRAP):
        pick = rng.integers(0, len(x), len(x))
        t = kendall(x[pick], y[pick]).tau
        if not math.isnan(t):
            draws.append(t)
    low, high = np.percentile(draws, [2.5, 97.5]) if draws else (math.nan, math.nan)
    return Agreement(label, tau, float(low), float(high))


def faithfulness(journal: Journal, prescreened: Collection[int] = ()) -> list[Agreement]:
    """τ between consecutive rungs and between the seeds of a rung, where at least
    :data:`MIN_LOSSES` losses were measured; ``prescreened`` candidates' rung-0 results (another
    surrogate) are left out."""
    rows = [r for r in journal.rungs() if r.status == Status.DONE and r.fitness is not None]
    by_rung: dict[int, dict[int, RungRow]] = {}
    for r in rows:
        if not (r.rung == 0 and r.candidate_id in prescreened):
            by_rung.setdefault(r.rung, {})[r.candidate_id] = r
    out = []
    rungs = sorted(by_rung)
    for a, b in itertools.pairwise(rungs):
        both = sorted(set(by_rung[a]) & set(by_rung[b]))
        if len(both) >= MIN_LOSSES:
            out.append(
                agreement(
                    [_value(by_rung[a][c]) for c in both],
                    [_value(by_rung[b][c]) for c in both],
                    f"rung {a} vs rung {b}",
                )
            )
    for rung in rungs:
        multi = [r.runs for r in by_rung[rung].values() if r.runs and len(r.runs) > 1]
        if len(multi) < MIN_LOSSES:
            continue
        runs = min(len(r) for r in multi)
        for i, j in itertools.combinations(range(runs), 2):
            out.append(
                agreement(
                    [r[i] for r in multi],
                    [r[j] for r in multi],
                    f"test-retest at rung {rung} (seed {i + 1} vs seed {j + 1})",
                )
            )
    return out


def _value(row: RungRow) -> float:
    """A finished rung's result (rows are filtered to those with one)."""
    return math.nan if row.fitness is None else row.fitness
