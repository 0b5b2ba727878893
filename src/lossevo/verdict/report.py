"""The verdict of a search: its finalists and the reference loss retrained with fresh seeds, tested.

A search ranks candidates on cheap, noisy trainings, and a short run's winner is often only the
fastest starter (docs/methods.md §3, §5). So when the budget is spent, the best ``top_k`` candidates of
the highest rung they reached (ties: by their result there) and the reference loss are each
trained ``runs`` times at the final budget with seeds no ranking has seen, the same seeds for
every loss. Fresh seeds make the comparison free of the winner's curse: the finalists were chosen
on other trainings. Each finalist gets mean ± std and the one-sided Welch t-test p-value against
the reference (H1: its mean accuracy is higher); the verdict sentence is about the best of them,
and calls it better only when its p-value stays below ``alpha`` after Holm's correction over the
finalists tested.

Faithfulness is measured alongside: Kendall τ between consecutive rungs over the candidates that
reached both, τ between two seeds of the same rung (the noise ceiling: no surrogate ranks better
than a second seed of itself), and τ between the top rung and the validation means.
"""

from __future__ import annotations

import csv
import itertools
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lossevo.analysis.rank_correlation import Tau, kendall
from lossevo.analysis.statistics import welch_greater
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
    order = sorted(reached.values(), key=lambda r: (-r.rung, -r.fitness, r.candidate_id))  # type: ignore[operator]
    out = []
    for row in order[:k]:
        candidate: CandidateRow = journal.candidate(row.candidate_id)
        out.append(Finalist(f"candidate_{candidate.id}", candidate.id, candidate.equation, candidate.genome,
                            row.rung, row.fitness))  # fmt: skip
    return out


@dataclass
class ValidatedLoss:
    finalist: Finalist
    values: list[float]  # validation accuracy of each finished run, in run order
    failed: int  # runs that failed (no accuracy)
    p_value: float | None = None  # one-sided Welch against the reference (None: the reference itself)
    p_holm: float | None = None  # Holm-adjusted over the finalists

    @property
    def mean(self) -> float:
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        return float(np.std(self.values, ddof=1)) if len(self.values) > 1 else math.nan

    @property
    def runs(self) -> int:
        return len(self.values) + self.failed


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
        out.append(agreement([by_rung[a][c].fitness for c in both], [by_rung[b][c].fitness for c in both],  # type: ignore[misc]
                             f"rung {a} vs rung {b}"))  # fmt: skip
    for rung in rungs:
        multi = [r for r in by_rung[rung].values() if r.runs and len(r.runs) > 1]
        if not multi:
            continue
        runs = min(len(r.runs) for r in multi)  # type: ignore[arg-type]
        taus = [agreement([r.runs[i] for r in multi], [r.runs[j] for r in multi], "").tau  # type: ignore[index]
                for i, j in itertools.combinations(range(runs), 2)]  # fmt: skip
        finite = [t.tau for t in taus if not math.isnan(t.tau)]
        p = taus[0].p if len(taus) == 1 else math.nan
        mean = Tau(float(np.mean(finite)) if finite else math.nan, p, len(multi))
        pairs = f" (mean of {len(taus)} pairs)" if len(taus) > 1 else ""
        out.append(Agreement(f"seed vs seed at rung {rung}{pairs}", mean))
    scored = [v for v in losses or [] if v.values and v.finalist.rung_fitness is not None]
    if len(scored) > 1:
        out.append(agreement([v.finalist.rung_fitness for v in scored], [v.mean for v in scored],  # type: ignore[misc]
                             "rung reached vs validation (finalists)"))  # fmt: skip
    return out


def holm(p_values: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN)."""
    finite = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(finite):
        running = max(running, min(1.0, (len(finite) - rank) * p))
        adjusted[i] = running
    return adjusted


@dataclass
class Verdict:
    reference: ValidatedLoss
    losses: list[ValidatedLoss]  # the finalists, best validated mean first
    steps: int
    runs: int
    alpha: float
    taus: list[Agreement]

    @classmethod
    def from_journal(
        cls,
        journal: Journal,
        reference: Finalist,
        chosen: list[Finalist],
        steps: int,
        runs: int,
        alpha: float,
    ) -> Verdict:
        rows = journal.validations(steps)

        def validated(f: Finalist) -> ValidatedLoss:
            mine = [r for r in rows if r.loss == f.name and r.run < runs]
            values = [r.fitness for r in mine if r.status == Status.DONE and r.fitness is not None]
            return ValidatedLoss(f, values, len(mine) - len(values))  # type: ignore[arg-type]

        ref = validated(reference)
        losses = [validated(f) for f in chosen]
        for v in losses:
            v.p_value = welch_greater(np.array(v.values), np.array(ref.values))
        for v, p in zip(losses, holm([v.p_value for v in losses]), strict=True):  # type: ignore[misc]
            v.p_holm = p
        losses.sort(key=lambda v: (-np.nan_to_num(v.mean, nan=-1.0), v.finalist.candidate_id or 0))
        return cls(ref, losses, steps, runs, alpha, faithfulness(journal, losses))

    @staticmethod
    def save_plan(
        journal: Journal, reference: Finalist, chosen: list[Finalist], steps: int, runs: int, alpha: float
    ) -> None:
        """Record what the verdict validates, so a report can rebuild it from the journal alone."""
        plan = {"reference": asdict(reference), "finalists": [asdict(f) for f in chosen], "steps": steps,
                "runs": runs, "alpha": alpha}  # fmt: skip
        journal.set_meta("verdict", plan)

    @classmethod
    def load(cls, journal: Journal) -> Verdict | None:
        """The verdict recorded in a search's journal (None: the search has none yet)."""
        plan = journal.get_meta("verdict")
        if plan is None:
            return None
        chosen = [Finalist(**f) for f in plan["finalists"]]
        return cls.from_journal(journal, Finalist(**plan["reference"]), chosen, plan["steps"], plan["runs"],
                                plan["alpha"])  # fmt: skip

    def track(self, tracker: Any) -> None:
        """The verdict on W&B: the validation table, the τ table and the sentence."""
        tracker.table("validation", list(self.COLUMNS), self.rows())
        tracker.table("faithfulness", ["between", "tau", "p", "n"],
                      [[a.label, _num(a.tau.tau), _num(a.tau.p), a.tau.n] for a in self.taus])  # fmt: skip
        tracker.summary({"verdict": self.sentence(), "verdict/beats_reference": self.beats})

    def name(self, v: ValidatedLoss) -> str:
        return f"best_{self.losses.index(v) + 1}"

    @property
    def beats(self) -> bool:
        """The best finalist is better than the reference at level ``alpha`` (Holm-adjusted), and
        none of its validation runs failed (a loss that sometimes diverges beats nothing)."""
        if not self.losses:
            return False
        best = self.losses[0]
        significant = best.p_holm is not None and not math.isnan(best.p_holm) and best.p_holm < self.alpha
        return significant and not best.failed

    def sentence(self) -> str:
        ref = self.reference
        where = f"{self.runs} seeds at {self.steps:,} steps"
        if not self.losses:
            return f"no candidate finished its search training: nothing to test against {ref.finalist.name}"
        best = self.losses[0]
        label = f"{self.name(best)} ({best.finalist.name})"
        figures = f"{_ms(best)} vs {_ms(ref)}, p = {_p(best.p_value)}"
        if len(self.losses) > 1:
            figures += f" (Holm-adjusted over {len(self.losses)} finalists: {_p(best.p_holm)})"
        if len(best.values) < 2 or len(ref.values) < 2:
            return (f"too few finished validation runs to test {label} against {ref.finalist.name} "
                    f"({_ms(best)} vs {_ms(ref)}, {where}); validate with validate.runs >= 2")  # fmt: skip
        if best.failed:
            return (f"no loss found beats {ref.finalist.name} reliably at this budget: the best, {label}, "
                    f"failed {best.failed} of {best.runs} validation runs; its finished runs {figures}, "
                    f"{where}")  # fmt: skip
        if self.beats:
            return f"{label} beats {ref.finalist.name}: {figures}, {where}"
        return (
            f"no loss found beats {ref.finalist.name} at this budget: the best, {label}, {figures}, {where}"
        )

    # ------------------------------------------------------------------ files
    COLUMNS = ("loss", "candidate", "equation", "runs", "finished", "mean", "std", "p_value", "p_holm",
               "rung", "rung_fitness")  # fmt: skip

    def rows(self) -> list[list[Any]]:
        out = []
        for v in [*self.losses, self.reference]:
            name = self.name(v) if v is not self.reference else v.finalist.name
            f = v.finalist
            out.append([name, f.candidate_id, f.equation, v.runs, len(v.values), _num(v.mean), _num(v.std),
                        _num(v.p_value), _num(v.p_holm), f.rung, _num(f.rung_fitness)])  # fmt: skip
        return out

    def write(self, folder: Path) -> dict[str, Path]:
        """``validation.csv`` and ``verdict.md`` in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        csv_path = folder / "validation.csv"
        with csv_path.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(self.COLUMNS)
            writer.writerows(self.rows())
        md = [
            "# Verdict",
            "",
            f"**{self.sentence()}**",
            "",
            f"Each loss trained {self.runs} times for {self.steps:,} steps with fresh seeds (the same for "
            f"every loss); one-sided Welch t-test against {self.reference.finalist.name}, level "
            f"{self.alpha} after Holm's correction over the finalists.",
            "",
            "| loss | candidate | finished | mean | std | p | p (Holm) | rung reached | result there "
            "| equation |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in self.rows():
            name, cid, equation, runs, finished, mean, std, p, ph, rung, rf = row
            cells = [name, "" if cid is None else cid, f"{finished}/{runs}", _cell(mean), _cell(std),
                     _cell(p, 3), _cell(ph, 3), "" if rung is None else rung, _cell(rf),
                     f"`{equation}`"]  # fmt: skip
            md.append("| " + " | ".join(map(str, cells)) + " |")
        md += ["", "## Faithfulness of the ranking (Kendall τ)", "",
               "| between | τ | p | losses |", "|---|---|---|---|"]  # fmt: skip
        for a in self.taus:
            md.append(f"| {a.label} | {_cell(_num(a.tau.tau), 3)} | {_cell(_num(a.tau.p), 3)} | {a.tau.n} |")
        if not self.taus:
            md.append("| (nothing to compare: one rung and one run per candidate) | | | |")
        md.append("")
        md.append("τ between two seeds of one rung is the noise ceiling: no cheaper ranking can beat it.")
        md_path = folder / "verdict.md"
        md_path.write_text("\n".join(md) + "\n")
        return {"validation": csv_path, "verdict": md_path}


def _num(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _cell(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ms(v: ValidatedLoss) -> str:
    if not v.values:
        return "no finished run"
    return f"{v.mean:.3f}" + (f" ± {v.std:.3f}" if len(v.values) > 1 else "")


def _p(p: float | None) -> str:
    return "n/a" if p is None or math.isnan(p) else f"{p:.2g}"
