"""How far a search's cheap ranking can be trusted: Kendall τ between consecutive rungs over the
candidates that reached both, between two seeds of the same rung, and between the rung reached and
the validation means."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lossevo.analysis.rank_correlation import Tau, kendall
from lossevo.results import Status
from lossevo.store.journal import Journal, RungRow

if TYPE_CHECKING:
    from lossevo.verdict.report import ValidatedLoss


@dataclass
class Agreement:
    """Kendall τ between two rankings of the same losses."""

    label: str
    tau: Tau


def agreement(a: list[float], b: list[float], label: str) -> Agreement:
    return Agreement(label, kendall(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


def faithfulness(journal: Journal, losses: list[ValidatedLoss] | None = None) -> list[Agreement]:
    """τ between consecutive rungs, between seeds within a rung, and of the top rung against the
    validation means."""
    rows = [r for r in journal.rungs() if r.status == Status.DONE and r.fitness is not None]
    by_rung: dict[int, dict[int, RungRow]] = {}
    for r in rows:
        by_rung.setdefault(r.rung, {})[r.candidate_id] = r
    out = []
    rungs = sorted(by_rung)
    for a, b in itertools.pairwise(rungs):
        both = sorted(set(by_rung[a]) & set(by_rung[b]))
        out.append(agreement([_value(by_rung[a][c]) for c in both], [_value(by_rung[b][c]) for c in both],
                             f"rung {a} vs rung {b}"))  # fmt: skip
    for rung in rungs:
        multi = [r.runs for r in by_rung[rung].values() if r.runs and len(r.runs) > 1]
        if not multi:
            continue
        runs = min(len(r) for r in multi)
        taus = [agreement([r[i] for r in multi], [r[j] for r in multi], "").tau
                for i, j in itertools.combinations(range(runs), 2)]  # fmt: skip
        finite = [t.tau for t in taus if not math.isnan(t.tau)]
        p = taus[0].p if len(taus) == 1 else math.nan
        mean = Tau(float(np.mean(finite)) if finite else math.nan, p, len(multi))
        pairs = f" (mean of {len(taus)} pairs)" if len(taus) > 1 else ""
        out.append(Agreement(f"seed vs seed at rung {rung}{pairs}", mean))
    scored = [
        (v.finalist.rung_fitness, v.mean)
        for v in losses or []
        if v.values and v.finalist.rung_fitness is not None
    ]
    if len(scored) > 1:
        out.append(
            agreement(
                [s[0] for s in scored], [s[1] for s in scored], "rung reached vs validation (finalists)"
            )
        )
    return out


def _value(row: RungRow) -> float:
    """A finished rung's result (rows are filtered to those with one)."""
    return math.nan if row.fitness is None else row.fitness
