"""One finished (or running) search as ``lossevo compare`` sees it, read from its journal only.

The journal is opened read-only and read as one snapshot, so a search that is still running can be
compared (its record is what it had done at that moment) and nothing is ever written to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossevo.results import Status, StopReason
from lossevo.store.journal import Journal
from lossevo.verdict.rows import Verdict

# Trainings that ended before their budget with nothing to show: compute a search spent on losses
# that never could have been picked.
WASTED = (StopReason.PRECHECK, StopReason.EARLY_STOP, StopReason.NONFINITE)


@dataclass(frozen=True)
class AnytimePoint:
    """After ``steps`` training steps (``seconds``) of the search, the pick so far scored ``best``:
    the validation accuracy of the candidate at the highest rung reached, best there."""

    steps: int
    seconds: float
    best: float


@dataclass
class SearchRecord:
    folder: Path
    seed: int
    identity: dict[str, Any]  # the run's identity without its seed: what makes searches comparable
    anytime: list[AnytimePoint]
    candidates: int
    failed: int
    search_steps: int
    search_seconds: float
    wasted_steps: int  # steps of trainings in WASTED
    verdict: Verdict | None
    verdict_steps: int  # trained by this search (baseline runs reused from the sweep's store: not counted)
    verdict_seconds: float
    # Test accuracy per run of each verdict training: (loss as journalled, setting, budget) -> {run: acc}
    test_runs: dict[tuple[str, str, int], dict[int, float]]

    @property
    def shared(self) -> tuple[str, int] | None:
        """The store and seed of the baseline runs its verdict shares with other searches (None: its own)."""
        plan = None if self.verdict is None else self.verdict.plan
        if plan is None or plan.shared is None or plan.seed is None:
            return None
        return plan.shared, plan.seed

    def runs(self, loss: str, setting: str, steps: int) -> dict[int, float]:
        return self.test_runs.get((loss, setting, steps), {})

    @property
    def name(self) -> str:
        return self.folder.name

    def best_at(self, steps: float) -> float:
        """The pick's validation accuracy after ``steps`` steps of the search (NaN: none yet)."""
        shown = [p.best for p in self.anytime if p.steps <= steps]
        return shown[-1] if shown else math.nan

    @property
    def final(self) -> float:
        return self.anytime[-1].best if self.anytime else math.nan

    @property
    def verdict_settings(self) -> str:
        """What its verdict measured (runs, budgets, settings, baselines, level): verdicts pool
        only where this is equal."""
        if self.verdict is None:
            return ""
        p = self.verdict.plan
        return (
            f"{p.runs} runs at {', '.join(f'{s:,}' for s in p.steps)} steps against "
            f"{', '.join(b.name for b in p.baselines)}, level {p.alpha}"
            + (f", settings {'; '.join(s for s in p.settings if s)}" if any(p.settings) else "")
        )


def read_search(folder: Path) -> SearchRecord:
    """The record of the search in ``folder`` (raises :class:`LossevoError` naming a bad journal)."""
    with Journal(folder, readonly=True) as journal, journal.snapshot():
        identity = dict(journal.get_meta("identity") or {})
        seed = int(identity.pop("seed", 0) or 0)
        for key in ("data_seed", "candidate"):  # per-run draws, never what a search is
            identity.pop(key, None)
        rungs = journal.rungs()
        references = journal.references()
        candidates = journal.candidates()
        verdict = Verdict.load(journal)
        validations = journal.validations()
    events: list[tuple[float, int, float, Any]] = sorted(
        [(r.finished_at or math.inf, r.steps or 0, r.seconds or 0.0, r) for r in rungs if r.finished_at]
        + [(r.finished_at, r.steps or 0, r.seconds or 0.0, None) for r in references],
        key=lambda e: e[0],
    )
    reached: dict[int, tuple[int, float]] = {}  # candidate -> (highest rung, its result there)
    steps, seconds, points = 0, 0.0, []
    for _, n, s, row in events:
        steps, seconds = steps + n, seconds + s
        done = row is not None and row.status == Status.DONE and row.fitness is not None
        if done and (row.candidate_id not in reached or row.rung >= reached[row.candidate_id][0]):
            reached[row.candidate_id] = (row.rung, float(row.fitness))
        if reached:
            points.append(AnytimePoint(steps, seconds, max(reached.values())[1]))
    wasted = sum(r.steps or 0 for r in rungs if r.stop_reason in WASTED)
    costs = verdict.costs if verdict is not None else []
    test_runs: dict[tuple[str, str, int], dict[int, float]] = {}
    for v in validations:
        if v.status == Status.DONE and v.test_acc is not None:
            test_runs.setdefault((v.loss, v.setting, v.budget), {})[v.run] = float(v.test_acc)
    return SearchRecord(
        folder=folder,
        seed=seed,
        identity=identity,
        anytime=points,
        candidates=len(candidates),
        failed=sum(c.status == Status.FAILED for c in candidates),
        search_steps=steps,
        search_seconds=seconds,
        wasted_steps=wasted,
        verdict=verdict if verdict is not None and verdict.finalists() else None,
        verdict_steps=sum(c.steps for c in costs if c.phase == "verdict"),
        verdict_seconds=sum(c.seconds for c in costs if c.phase == "verdict"),
        test_runs=test_runs,
    )
