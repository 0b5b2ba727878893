"""The verdict of a search: its finalists and the reference loss retrained with fresh seeds, tested.

A search ranks candidates on cheap, noisy trainings, and a short run's winner is often only the
fastest starter (docs/methods.md §3, §5). The verdict's trainings (:mod:`lossevo.verdict.phase`,
planned by :mod:`lossevo.verdict.plan`) give each finalist mean ± std and the one-sided Welch
t-test p-value against the reference (H1: its mean accuracy is higher); the verdict sentence is
about the best of them, and calls it better only when its p-value stays below ``alpha`` after
Holm's correction over the finalists tested. Faithfulness (:mod:`lossevo.verdict.faithfulness`)
is measured alongside. This module turns the journal's validation rows into that verdict and
writes ``validation.csv``, ``verdict.md`` and the W&B tables.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lossevo.results import Status
from lossevo.store.journal import Journal
from lossevo.verdict.faithfulness import Agreement, faithfulness
from lossevo.verdict.plan import Finalist, ValidationPlan
from lossevo.verdict.statistics import holm, welch_greater


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
            return ValidatedLoss(f, values, len(mine) - len(values))

        ref = validated(reference)
        losses = [validated(f) for f in chosen]
        for v in losses:
            v.p_value = welch_greater(np.array(v.values), np.array(ref.values))
        p_values = [math.nan if v.p_value is None else v.p_value for v in losses]
        for v, p in zip(losses, holm(p_values), strict=True):
            v.p_holm = p
        losses.sort(key=lambda v: (-np.nan_to_num(v.mean, nan=-1.0), v.finalist.candidate_id or 0))
        return cls(ref, losses, steps, runs, alpha, faithfulness(journal, losses))

    @classmethod
    def from_plan(cls, journal: Journal, plan: ValidationPlan) -> Verdict:
        return cls.from_journal(journal, plan.reference, plan.finalists, plan.steps, plan.runs, plan.alpha)

    @classmethod
    def load(cls, journal: Journal) -> Verdict | None:
        """The verdict recorded in a search's journal (None: the search has none yet)."""
        plan = ValidationPlan.load(journal)
        return None if plan is None else cls.from_plan(journal, plan)

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
