"""What a search and its verdict cost: trainings, training steps and seconds per rung and per cell,
from the journal (every training records its steps and seconds). A verdict's baseline run reused
from another search of the sweep cost this search nothing: it is counted apart."""

from __future__ import annotations

from dataclasses import dataclass

from lossevo.results import FINISHED
from lossevo.store.database import RecordedTraining
from lossevo.store.journal import Journal
from lossevo.verdict.plan import ValidationPlan


@dataclass(frozen=True)
class CostLine:
    phase: str  # "search" or "verdict"
    where: str  # "rung 0", or a verdict cell
    trainings: int  # trained by this search
    steps: int
    seconds: float
    reused: int = 0  # verdict trainings another search of the sweep trained (shared baselines)


def cost(journal: Journal, plan: ValidationPlan | None) -> list[CostLine]:
    """One line per search rung (candidates and the reference loss) and per verdict cell."""
    lines = []
    rungs = sorted({r.rung for r in journal.rungs()} | {r.rung for r in journal.references()})
    for rung in rungs:
        rows: list[RecordedTraining] = [r for r in journal.rungs(rung) if r.status in FINISHED]
        rows += journal.references(rung)
        lines.append(
            CostLine(
                "search",
                f"rung {rung}",
                len(rows),
                sum(r.steps or 0 for r in rows),
                sum(r.seconds or 0.0 for r in rows),
            )
        )
    if plan is None:
        return lines
    if plan.tune is not None:
        tuned = [
            r for r in journal.tunings(plan.tune.budget) if r.loss in plan.losses and r.status in FINISHED
        ]
        steps, seconds = sum(r.steps or 0 for r in tuned), sum(r.seconds or 0.0 for r in tuned)
        lines.append(CostLine("verdict", f"tuning at {plan.tune.budget:,} steps", len(tuned), steps, seconds))
    for cell in plan.cells:
        validations = [r for r in journal.validations(cell.steps, cell.setting) if r.loss in plan.losses]
        done = [r for r in validations if not r.reused]
        lines.append(
            CostLine(
                "verdict",
                cell.label,
                len(done),
                sum(r.steps or 0 for r in done),
                sum(r.seconds or 0.0 for r in done),
                len(validations) - len(done),
            )
        )
    return lines
