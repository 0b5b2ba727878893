"""The verdict's statistics: journal rows in, typed :mod:`~lossevo.verdict.rows` out.

The verdict's trainings (:mod:`lossevo.verdict.phase`, planned by :mod:`lossevo.verdict.plan`)
retrain the finalists and the baselines with fresh seeds; here their journal rows become the
verdict (docs/methods.md §5):

* Selection used validation data only (rungs, promotions, finalists, and the ranks ``best_k``, by
  the headline's validation mean here); the verdict reports **test accuracy** at the end of each
  validation training, with validation accuracy beside it.
* Per finalist and baseline, in every cell (a setting at a budget): the mean paired difference
  with its one-sided bounds, the one-sided paired t-test, Welch's beside it, the pairs' correlation
  (:mod:`lossevo.verdict.statistics`). A finalist beats the baselines only when it beats each of
  them (intersection-union: the largest p), Holm-adjusted over the finalists, with every
  validation run finished.
* Alongside: how far the cheap ranking can be trusted (:mod:`lossevo.verdict.faithfulness`), what
  the search and the verdict cost (:mod:`lossevo.verdict.cost`), and every look at the verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lossevo.results import Status, unpack_hits
from lossevo.store.journal import Journal, ValidationRow
from lossevo.verdict.cost import cost
from lossevo.verdict.faithfulness import faithfulness
from lossevo.verdict.plan import Finalist, ValidationCell, ValidationPlan
from lossevo.verdict.rows import ComparisonRow, LossRow, Verdict
from lossevo.verdict.statistics import (
    Comparison,
    TestSetSampling,
    compare,
    holm,
    intersection_union,
    with_test_set,
)
from lossevo.verdict.tuning import applied


@dataclass
class _Runs:
    """One loss's finished validation runs in one cell, by run index."""

    name: str
    planned: int
    test: dict[int, float] = field(default_factory=dict)
    val: dict[int, float] = field(default_factory=dict)
    failed: int = 0
    hits: dict[int, str] = field(default_factory=dict)  # which test images each run got right


def compute_verdict(journal: Journal, plan: ValidationPlan) -> Verdict:
    """The verdict of ``plan`` from the validation trainings ``journal`` holds so far."""
    chosen, tuning = plan.tuned(journal)
    grids = plan.tuning_grids()
    points = {name: applied(name, chosen, grids) for name in plan.losses}
    expected = {name: "" if p is None else p.label for name, p in points.items()}
    runs = {cell: _cell_runs(journal, plan, cell, expected) for cell in plan.cells}
    headline = runs[plan.cells[0]]
    # best_k: by the headline's validation mean (what selects; test accuracy only reports)
    ranked = sorted(
        plan.finalists, key=lambda f: (-np.nan_to_num(_mean(headline[f.name].val), nan=-1.0), f.name)
    )
    rank = {f.name: f"best_{k}" for k, f in enumerate(ranked, start=1)}
    losses: list[LossRow] = []
    comparisons: list[ComparisonRow] = []
    for cell in plan.cells:
        mine = runs[cell]
        baselines = [mine[b.name] for b in plan.baselines]
        # Tests and bounds at the level of Holm's first step (alpha over the finalists).
        level = plan.alpha / max(1, len(plan.finalists))
        tests = {
            f.name: [compare(mine[f.name].test, b.test, b.name, level) for b in baselines] for f in ranked
        }
        p = {name: intersection_union([c.p for c in cs]) for name, cs in tests.items()}
        # Holm over the finalists in the plan's order (a missing p counts as 1)
        p_holm = dict(
            zip([f.name for f in plan.finalists], holm([p[f.name] for f in plan.finalists]), strict=True)
        )
        for f in ranked:
            r, cs = mine[f.name], tests[f.name]
            complete = r.failed == 0 and len(r.test) + r.failed == r.planned
            beats = complete and not math.isnan(p_holm[f.name]) and p_holm[f.name] < plan.alpha
            losses.append(
                _row(
                    cell,
                    rank[f.name],
                    "finalist",
                    f,
                    f.equation,
                    r,
                    p[f.name],
                    p_holm[f.name],
                    beats,
                )
            )
            comparisons += [
                _comparison(cell, rank[f.name], c, _test_set(r, b, level))
                for c, b in zip(cs, baselines, strict=True)
            ]
        for b, r in zip(plan.baselines, baselines, strict=True):
            losses.append(_row(cell, b.name, "baseline", None, b.equation, r, None, None, None))
    taus = faithfulness(journal, set(plan.prescreened))
    return Verdict(
        plan,
        list(plan.cells),
        losses,
        comparisons,
        taus,
        journal.looks(),
        cost(journal, plan),
        tuning,
        {name: point for name, point in points.items() if point is not None},
    )


def _cell_runs(
    journal: Journal, plan: ValidationPlan, cell: ValidationCell, points: dict[str, str]
) -> dict[str, _Runs]:
    """Each loss's runs in ``cell`` that trained at its tuned point (``points``: '' untuned)."""
    rows = journal.validations(cell.steps, cell.setting)
    return {name: _runs(rows, name, plan.runs, points[name]) for name in plan.losses}


def _runs(rows: list[ValidationRow], name: str, planned: int, point: str) -> _Runs:
    runs = _Runs(name, planned)
    for r in rows:
        if r.loss != name or r.run >= planned or r.point != point:
            continue
        if r.status == Status.FAILED:
            runs.failed += 1
        elif r.test_acc is not None and r.fitness is not None:  # older rows have no test accuracy
            runs.test[r.run] = r.test_acc
            runs.val[r.run] = r.fitness
            if r.test_hits:
                runs.hits[r.run] = r.test_hits
    return runs


def _row(
    cell: ValidationCell,
    loss: str,
    role: str,
    f: Finalist | None,
    equation: str,
    r: _Runs,
    p: float | None,
    p_holm: float | None,
    beats: bool | None,
) -> LossRow:
    return LossRow(
        setting=cell.setting,
        steps=cell.steps,
        loss=loss,
        role=role,
        candidate=f.candidate_id if f else None,
        equation=equation,
        runs=r.planned,
        finished=len(r.test),
        failed=r.failed,
        test_mean=_mean(r.test),
        test_std=_std(r.test),
        val_mean=_mean(r.val),
        val_std=_std(r.val),
        p_every_baseline=p,
        p_holm=p_holm,
        beats=beats,
        rung=f.rung if f else None,
        rung_fitness=f.rung_fitness if f else None,
        trained_as=r.name,
    )


def _test_set(a: _Runs, b: _Runs, level: float) -> TestSetSampling | None:
    """The lead's bounds with the test images' sampling, over the runs both recorded per image."""
    runs = sorted(set(a.hits) & set(b.hits) & set(a.test) & set(b.test))
    if len(runs) < 2:
        return None
    return with_test_set(
        [unpack_hits(a.hits[r]) for r in runs], [unpack_hits(b.hits[r]) for r in runs], level
    )


def _comparison(
    cell: ValidationCell, loss: str, c: Comparison, sampling: TestSetSampling | None = None
) -> ComparisonRow:
    return ComparisonRow(
        setting=cell.setting,
        steps=cell.steps,
        loss=loss,
        baseline=c.baseline,
        pairs=c.n,
        difference=c.difference,
        lower=c.lower,
        upper=c.upper,
        sd=c.sd,
        p_paired=c.p,
        p_welch=c.p_welch,
        p_signflip=c.p_signflip,
        lower_images=sampling.lower if sampling else math.nan,
        upper_images=sampling.upper if sampling else math.nan,
        images_share=sampling.images_share if sampling else math.nan,
        correlation=c.correlation,
        level=c.level,
    )


def _mean(values: dict[int, float]) -> float:
    return float(np.mean(list(values.values()))) if values else math.nan


def _std(values: dict[int, float]) -> float:
    return float(np.std(list(values.values()), ddof=1)) if len(values) > 1 else math.nan
