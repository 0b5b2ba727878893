"""What a verdict validates: the finalists, the baselines, the cells (settings x budgets), the runs.

When a search's budget is spent, its best ``top_k`` candidates of the highest rung they reached
(ties: by their result there; the ranking used validation data only) and every baseline are each
trained ``runs`` times in every cell, a setting at a budget, with seeds no ranking has seen, the
same seeds for every loss (docs/methods.md §5). Run r of every loss shares its init seed and its
batches, so the losses are compared in pairs. The plan is recorded in the journal, so a report
rebuilds the verdict from the journal alone.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lossevo.execution.objectives import training_seeds
from lossevo.results import Status
from lossevo.store.journal import CandidateRow, Journal, RungRow
from lossevo.verdict.statistics import joint_detectable
from lossevo.verdict.tuning import Point, TuneGrid, TuningResult, choose, points

# A validation run is the measurement, not a race: it trains the whole budget. The search's
# pre-check and early stop save time on candidates; here they would turn a slow start into a
# missing value, and a mean over the runs that survived flatters the loss.
FULL_BUDGET = ("surrogate.precheck.step=null", "surrogate.early_stop.step=null")
# The search's own setting among the verdict's cells.
OWN = ""
# In validate.baselines: the search's reference loss (its loss=).
REFERENCE = "reference"


def validation_overrides(setting: list[str], steps: int) -> list[str]:
    """The overrides of one validation training: the setting's, the budget, no early exits."""
    return [*setting, f"surrogate.steps={steps}", *FULL_BUDGET]


def validation_seeds(run_seed: int, settings: int, runs: int) -> list[int]:
    """Fresh training seeds of the validation runs, shared by every loss (settings outermost)."""
    base = int(np.random.SeedSequence([run_seed, 0x7A11D]).generate_state(1)[0])
    return training_seeds(base, settings, runs)


def tuning_seeds(run_seed: int, settings: int, runs: int) -> list[int]:
    """The tuning trainings' own seeds (none is a test run's), shared by every loss and point."""
    base = int(np.random.SeedSequence([run_seed, 0x7E5E]).generate_state(1)[0])
    return training_seeds(base, settings, runs)


@dataclass
class Finalist:
    name: str  # candidate_<id>, or the reference loss's name
    candidate_id: int | None
    equation: str
    genome: dict[str, Any] | None
    rung: int | None  # the highest rung it trained at (None: the reference)
    rung_fitness: float | None  # its result there


@dataclass
class Baseline:
    """A loss every finalist must beat: its name in the journal, its loss config, its equation."""

    name: str
    loss: dict[str, Any] | None  # None in plans of journals older than baselines
    equation: str


@dataclass(frozen=True)
class ValidationCell:
    """One setting at one budget."""

    setting: str  # override string ('': the search's own)
    steps: int

    @property
    def overrides(self) -> list[str]:
        return shlex.split(self.setting)

    @property
    def label(self) -> str:
        where = self.setting or "the search's setting"
        return f"{where} at {self.steps:,} steps"


def finalists(journal: Journal, k: int) -> list[Finalist]:
    """The best ``k`` candidates of the highest rung reached: by rung, then the result there."""
    reached: dict[int, RungRow] = {}
    for row in journal.rungs():
        if row.status == Status.DONE and row.fitness is not None:
            best = reached.get(row.candidate_id)
            if best is None or row.rung > best.rung:
                reached[row.candidate_id] = row
    order = sorted(reached.values(), key=lambda r: (-r.rung, -(r.fitness or 0.0), r.candidate_id))
    out = []
    for row in order[:k]:
        candidate: CandidateRow = journal.candidate(row.candidate_id)
        out.append(
            Finalist(
                f"candidate_{candidate.id}",
                candidate.id,
                candidate.equation,
                candidate.genome,
                row.rung,
                row.fitness,
            )
        )
    return out


@dataclass
class Design:
    """What a verdict's runs can resolve, fixed before they train (docs/methods.md §5): with
    ``spread`` (the paired differences' standard deviation assumed, ``source`` saying whence), the
    one-sided tests at ``level`` all find a lead of ``resolution`` over every baseline with
    probability at least :data:`POWER`. ``target``: the resolution ``validate.runs=auto`` sized
    the runs for (None: the runs were given)."""

    spread: float  # fraction of 1, like the accuracies
    source: str
    level: float  # Holm's first step: alpha over the finalists
    resolution: float  # NaN: fewer than 2 runs
    target: float | None = None


POWER = 0.8  # the power at which a verdict's design states what it resolves


def design(
    runs: int, spread: float, source: str, baselines: int, level: float, target: float | None = None
) -> Design:
    return Design(spread, source, level, joint_detectable(runs, [spread] * baselines, level, POWER), target)


def runs_for(resolution: float, spread: float, baselines: int, level: float, cap: int) -> int:
    """``validate.runs=auto``: the fewest runs (2 to ``cap``) whose design resolves ``resolution``;
    ``cap`` when none does."""
    for n in range(2, cap + 1):
        if joint_detectable(n, [spread] * baselines, level, POWER) <= resolution:
            return n
    return cap


@dataclass
class ValidationPlan:
    """What the verdict trains and tests: ``runs`` trainings of every finalist and baseline in every
    cell (each of ``settings`` at each of ``steps``); ``alpha`` is the level of "beats"."""

    finalists: list[Finalist]
    baselines: list[Baseline]  # the first is the search's reference loss
    steps: list[int]  # budgets, ascending; the longest is the headline's
    settings: list[str] = field(default_factory=lambda: [OWN])  # the search's own first
    runs: int = 0
    alpha: float = 0.05
    top_k: int = 0
    gpu: bool = False  # trained on GPUs (the cost is in GPU-hours)
    prescreened: list[int] = field(default_factory=list)  # candidates whose rung 0 was a pre-screen
    seed: int | None = None  # the validation seeds' base (None: a plan of an older lossevo: the run's seed)
    shared: str | None = None  # the folder of the store of shared baseline trainings (None: not shared)
    design: Design | None = None  # what the runs resolve, decided before they train (None: older plans)
    tune: TuneGrid | None = None  # the grid every loss is tuned on before its test runs (None: untuned)

    @property
    def cells(self) -> list[ValidationCell]:
        """Every (setting, budget), the headline first: the search's own setting at its longest budget."""
        cells = [ValidationCell(s, b) for s in self.settings for b in self.steps]
        return sorted(cells, key=lambda c: c != self.headline)

    @property
    def headline(self) -> ValidationCell:
        return ValidationCell(self.settings[0], max(self.steps))

    @property
    def losses(self) -> list[str]:
        return [*(f.name for f in self.finalists), *(b.name for b in self.baselines)]

    def tuning_grids(self) -> dict[str, list[Point]]:
        """Each loss's tuning grid, its own setting first (empty: the verdict is not tuned)."""
        if self.tune is None:
            return {}
        out = {f.name: points({}, False, self.tune) for f in self.finalists}
        out.update({b.name: points(b.loss or {}, True, self.tune) for b in self.baselines})
        return out

    def tuned(self, journal: Journal) -> tuple[dict[str, Point], list[TuningResult]]:
        """Each loss's chosen point from the tuning trainings the journal holds, and every point's
        result (nothing when the verdict is not tuned)."""
        if self.tune is None:
            return {}, []
        return choose(journal.tunings(self.tune.budget), self.tuning_grids())

    def look(self) -> dict[str, Any]:
        """What a look at this verdict is defined by (journalled, listed in verdict.md)."""
        return {
            "runs": self.runs,
            "steps": self.steps,
            "settings": self.settings,
            "top_k": self.top_k,
            "alpha": self.alpha,
            "baselines": [b.name for b in self.baselines],
            "finalists": [f.name for f in self.finalists],
            "design": None if self.design is None else asdict(self.design),
            "tune": None if self.tune is None else asdict(self.tune),
        }

    def save(self, journal: Journal) -> None:
        """Record what the verdict validates, so a report can rebuild it from the journal alone."""
        journal.set_meta("verdict", asdict(self))

    @classmethod
    def load(cls, journal: Journal) -> ValidationPlan | None:
        """The plan recorded in a search's journal (None: the search has no verdict yet). A plan of
        an older lossevo (one reference, one budget) reads as one baseline and one cell."""
        plan = journal.get_meta("verdict")
        if plan is None:
            return None
        chosen = [Finalist(**f) for f in plan["finalists"]]
        if "baselines" not in plan:
            reference = plan["reference"]
            baseline = Baseline(reference["name"], None, reference["equation"])
            runs, alpha = int(plan["runs"]), float(plan["alpha"])
            return cls(chosen, [baseline], [int(plan["steps"])], [OWN], runs, alpha, len(chosen))
        return cls(
            chosen,
            [Baseline(**b) for b in plan["baselines"]],
            [int(s) for s in plan["steps"]],
            [str(s) for s in plan["settings"]],
            int(plan["runs"]),
            float(plan["alpha"]),
            int(plan["top_k"]),
            bool(plan.get("gpu", False)),
            [int(c) for c in plan.get("prescreened", [])],
            None if plan.get("seed") is None else int(plan["seed"]),
            None if plan.get("shared") is None else str(plan["shared"]),
            None if plan.get("design") is None else Design(**plan["design"]),
            None if plan.get("tune") is None else TuneGrid(**plan["tune"]),
        )


def budgets(steps: Any, top_rung: int, gpu: bool) -> list[int]:
    """``validate.steps`` as budgets, ascending: a count, a list of counts, or unset (the top rung's
    budget, and four times it on a GPU)."""
    if steps is None:
        return [top_rung, 4 * top_rung] if gpu else [top_rung]
    values = list(steps) if isinstance(steps, (list, tuple)) else [steps]
    return sorted({int(v) for v in values})


# The base of every shared verdict's seeds: the searches of a sweep differ in their seed, their
# verdicts must not (run r of cross-entropy is then one training for all of them).
SHARED_SEED = 0


def verdict_seeding(
    share: Any, seed: int | None, run_seed: int, sweep_root: Path | None
) -> tuple[int, str | None]:
    """The verdict's base seed and the folder of its store of shared trainings. ``share``
    (``validate.share``): ``auto`` shares within a multirun (at its root), ``false`` never, a
    folder with every search that names it. ``seed`` (``validate.seed``) null: the search's seed
    when not shared, else :data:`SHARED_SEED`."""
    if share is None or share is False or str(share).lower() in ("false", "none", "off", "no"):
        folder = None
    elif str(share) == "auto":
        folder = sweep_root
    else:
        folder = Path(str(share)).expanduser()
    shared = None if folder is None else str(folder.absolute())
    if seed is not None:
        return int(seed), shared
    return (SHARED_SEED if shared else run_seed), shared


def split_change(own: dict[str, Any], other: dict[str, Any], prefix: str = "dataset") -> list[str]:
    """What a verdict setting changes in the data (``own`` and ``other``: resolved dataset nodes), as
    ``key: a -> b``; any change may put the search's training or validation images in its test split."""
    out = []
    for key in sorted(set(own) | set(other)):
        a, b = own.get(key), other.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += split_change(a, b, f"{prefix}.{key}")
        elif a != b:
            out.append(f"{prefix}.{key}: {a} -> {b}")
    return out


def validation_runs(runs: Any, gpu: bool) -> int:
    """``validate.runs`` given as a number; unset: 8 on a GPU, 5 on the CPU (``auto`` is
    :func:`runs_for`)."""
    if runs is not None:
        return int(runs)
    return 8 if gpu else 5


def on_gpu(accelerator: str) -> bool:
    import torch

    return torch.cuda.is_available() and accelerator != "cpu"
