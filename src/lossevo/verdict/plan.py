"""What a verdict validates: the finalists, the reference loss, the budget and the runs.

When a search's budget is spent, the best ``top_k`` candidates of the highest rung they reached
(ties: by their result there) and the reference loss are each trained ``runs`` times at the
final budget with seeds no ranking has seen, the same seeds for every loss (docs/methods.md §5).
The plan is recorded in the journal, so a report rebuilds the verdict from the journal alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lossevo.results import Status
from lossevo.search.fidelity import training_seeds
from lossevo.store.journal import CandidateRow, Journal, RungRow

# A validation run is the measurement, not a race: it trains the whole budget. The search's
# pre-check and early stop save time on candidates; here they would turn a slow start into a
# missing value, and a mean over the runs that survived flatters the loss.
FULL_BUDGET = ("surrogate.precheck.step=null", "surrogate.early_stop.step=null")


def validation_overrides(setting: list[str], steps: int) -> list[str]:
    """The overrides of one validation training: the setting's, the budget, no early exits."""
    return [*setting, f"surrogate.steps={steps}", *FULL_BUDGET]


def validation_seeds(run_seed: int, settings: int, runs: int) -> list[int]:
    """Fresh training seeds of the validation runs, shared by every loss (settings outermost)."""
    base = int(np.random.SeedSequence([run_seed, 0x7A11D]).generate_state(1)[0])
    return training_seeds(base, settings, runs)


@dataclass
class Finalist:
    name: str  # candidate_<id>, or the reference loss's name
    candidate_id: int | None
    equation: str
    genome: dict[str, Any] | None
    rung: int | None  # the highest rung it trained at (None: the reference)
    rung_fitness: float | None  # its result there


def finalists(journal: Journal, k: int) -> list[Finalist]:
    """The best ``k`` candidates of the highest rung reached: by rung, then the result there."""
    reached: dict[int, RungRow] = {}
    for row in journal.rungs():
        if row.status == Status.DONE and row.fitness is not None:
            best = reached.get(row.candidate_id)
            if best is None or row.rung > best.rung:
                reached[row.candidate_id] = row
    order = sorted(
        reached.values(), key=lambda r: (-r.rung, -(r.fitness or 0.0), r.candidate_id)
    )  # all finite
    out = []
    for row in order[:k]:
        candidate: CandidateRow = journal.candidate(row.candidate_id)
        out.append(Finalist(f"candidate_{candidate.id}", candidate.id, candidate.equation, candidate.genome,
                            row.rung, row.fitness))  # fmt: skip
    return out


@dataclass
class ValidationPlan:
    """The reference, the finalists, their budget (steps), the runs per loss and the level."""

    reference: Finalist
    finalists: list[Finalist]
    steps: int
    runs: int
    alpha: float

    def save(self, journal: Journal) -> None:
        """Record what the verdict validates, so a report can rebuild it from the journal alone."""
        journal.set_meta("verdict", asdict(self))

    @classmethod
    def load(cls, journal: Journal) -> ValidationPlan | None:
        """The plan recorded in a search's journal (None: the search has no verdict yet)."""
        plan = journal.get_meta("verdict")
        if plan is None:
            return None
        return cls(Finalist(**plan["reference"]), [Finalist(**f) for f in plan["finalists"]], plan["steps"],
                   plan["runs"], plan["alpha"])  # fmt: skip


def validation_runs(runs: int | None, accelerator: str) -> int:
    """``validate.runs``; unset: 5 on a GPU, 3 on the CPU."""
    if runs is not None:
        return int(runs)
    import torch

    return 5 if torch.cuda.is_available() and accelerator != "cpu" else 3


def plan_validation(
    journal: Journal,
    reference: Finalist,
    top_k: int,
    steps: int,
    runs: int,
    alpha: float,
) -> ValidationPlan:
    """The verdict of a search: its best ``top_k`` finalists and ``reference``, ``runs`` times each at
    ``steps``."""
    return ValidationPlan(reference, finalists(journal, top_k), steps, runs, alpha)
