"""The verdict as typed rows: what the statistics found, which every renderer reads.

:mod:`lossevo.verdict.compute` fills a :class:`Verdict` from the journal (one :class:`LossRow` per
loss and cell, one :class:`ComparisonRow` per finalist, baseline and cell); the sentence
(:mod:`~lossevo.verdict.sentence`), ``verdict.md`` (:mod:`~lossevo.verdict.markdown`), the CSV
files and W&B (:mod:`~lossevo.verdict.files`), the CLI table, the export's docstring and the
artifact's metadata only read these rows: they compute nothing. A field of a row is a column of
``validation.csv`` or ``comparisons.csv``, in order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from lossevo.store.journal import Journal, Look
from lossevo.verdict.cost import CostLine
from lossevo.verdict.faithfulness import Agreement
from lossevo.verdict.plan import Finalist, ValidationCell, ValidationPlan
from lossevo.verdict.tuning import Point, TuningResult


@dataclass(frozen=True)
class LossRow:
    """One loss in one cell: its validation runs, and for a finalist the test against every baseline."""

    setting: str  # the cell: a setting ("" is the search's own) ...
    steps: int  # ... at a budget
    loss: str  # best_<k> for a finalist (its rank by headline validation mean), else the baseline's name
    role: str  # "finalist" or "baseline"
    candidate: int | None
    equation: str
    runs: int  # planned
    finished: int
    failed: int
    test_mean: float  # NaN: no finished run (std: fewer than two)
    test_std: float
    val_mean: float
    val_std: float
    p_every_baseline: float | None  # finalists: intersection-union over the baselines, not adjusted
    p_holm: float | None  # ... Holm-adjusted over the finalists (what "beats" reads)
    beats: bool | None  # ... below alpha after Holm, every run finished
    rung: int | None  # finalists: the highest rung the search trained it at ...
    rung_fitness: float | None  # ... and its result there
    trained_as: str  # the name its trainings carry in the journal (candidate_12, cross_entropy)

    @property
    def missing(self) -> int:
        return self.runs - self.finished - self.failed

    @property
    def finalist(self) -> bool:
        return self.role == "finalist"


@dataclass(frozen=True)
class ComparisonRow:
    """A finalist against one baseline in one cell: the paired difference of test accuracy."""

    setting: str
    steps: int
    loss: str  # best_<k>
    baseline: str
    pairs: int
    difference: float  # mean paired difference (finalist - baseline), fraction of 1
    lower: float  # one-sided (1 - level) bounds of that difference: lower > 0 exactly when
    upper: float  # p_paired < level; upper: the largest lead the runs do not rule out
    sd: float  # of the paired differences (0 with difference 0: identical runs)
    p_paired: float  # one-sided paired t-test, "the finalist is better"; not adjusted
    p_welch: float  # one-sided Welch test of the same runs, unpaired; not adjusted
    p_signflip: float  # the exact one-sided sign-flip test of the same pairs (its floor: 1/2^pairs)
    lower_images: float  # the same bounds with the test images' sampling added (NaN: runs
    upper_images: float  # without per-image records)
    images_share: float  # the part of the bounds' distance from the difference the images add
    correlation: float  # of the pairs
    level: float  # of the test and the bounds: Holm's first step, alpha over the finalists

    @property
    def identical(self) -> bool:
        """Every paired difference is 0: the finalist trained exactly like the baseline."""
        return self.pairs >= 2 and self.sd == 0 and self.difference == 0


def columns(row_type: type) -> list[str]:
    """A row type's fields: the columns of its CSV file and W&B table."""
    return [f.name for f in fields(row_type)]


@dataclass
class Verdict:
    """Every row of a verdict, and the plan, faithfulness, cost and looks beside them. Queries
    here select rows; none computes a statistic."""

    plan: ValidationPlan
    cells: list[ValidationCell]  # the headline first
    losses: list[LossRow]  # per cell: finalists by rank, then baselines in the plan's order
    comparisons: list[ComparisonRow]
    taus: list[Agreement]
    looks: list[Look]
    costs: list[CostLine]
    tuning: list[TuningResult] = field(default_factory=list)  # every loss's grid points (validate.tune)
    tuned: dict[str, Point] = field(default_factory=dict)  # loss -> its tuned point (absent: its own)

    @classmethod
    def from_journal(cls, journal: Journal, plan: ValidationPlan) -> Verdict:
        from lossevo.verdict.compute import compute_verdict

        return compute_verdict(journal, plan)

    @classmethod
    def load(cls, journal: Journal) -> Verdict | None:
        """The verdict recorded in a search's journal (None: the search has none yet)."""
        plan = ValidationPlan.load(journal)
        return None if plan is None else cls.from_journal(journal, plan)

    @property
    def headline(self) -> ValidationCell:
        return self.cells[0]

    def rows(self, cell: ValidationCell | None = None) -> list[LossRow]:
        cell = cell or self.headline
        return [r for r in self.losses if (r.setting, r.steps) == (cell.setting, cell.steps)]

    def finalists(self, cell: ValidationCell | None = None) -> list[LossRow]:
        """A cell's finalists (the headline's by default), best_1 first."""
        return [r for r in self.rows(cell) if r.finalist]

    def baselines(self, cell: ValidationCell | None = None) -> list[LossRow]:
        return [r for r in self.rows(cell) if not r.finalist]

    def row(self, loss: str, cell: ValidationCell) -> LossRow:
        return next(r for r in self.rows(cell) if r.loss == loss)

    def against(self, row: LossRow) -> list[ComparisonRow]:
        """A finalist's comparisons in its cell, in the plan's baseline order."""
        key = (row.setting, row.steps, row.loss)
        return [c for c in self.comparisons if (c.setting, c.steps, c.loss) == key]

    def binding(self, row: LossRow) -> ComparisonRow | None:
        """The comparison that decides: the baseline the finalist is least clearly better than."""
        mine = self.against(row)
        return max(
            mine, key=lambda c: (1.0 if math.isnan(c.p_paired) else c.p_paired, -c.difference), default=None
        )

    def finalist_of(self, row: LossRow) -> Finalist | None:
        """The plan's finalist a row is about (None for a baseline)."""
        if not row.finalist:
            return None
        return next((f for f in self.plan.finalists if f.name == row.trained_as), None)

    @property
    def winners(self) -> list[LossRow]:
        return [r for r in self.finalists() if r.beats]

    @property
    def beats(self) -> bool:
        return bool(self.winners)

    def wins(self, loss: str) -> tuple[int, int]:
        """In how many cells the finalist ``loss`` (best_<k>) beats every baseline, of how many."""
        mine = [r for r in self.losses if r.finalist and r.loss == loss]
        return sum(bool(r.beats) for r in mine), len(mine)

    def done(self, cell: ValidationCell | None = None) -> tuple[int, int]:
        """Validation trainings of a cell finished or failed, of those planned."""
        rows = self.rows(cell)
        return sum(r.finished + r.failed for r in rows), sum(r.runs for r in rows)

    def sentence(self) -> str:
        """The verdict in one sentence (:func:`lossevo.verdict.sentence.sentence`)."""
        from lossevo.verdict.sentence import sentence

        return sentence(self)
