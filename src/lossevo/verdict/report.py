"""The verdict of a search: its finalists against the baselines on test data, with the evidence.

A search ranks candidates on cheap, noisy trainings, and a short run's winner is often only the
fastest starter (docs/methods.md §3, §5). The verdict's trainings (:mod:`lossevo.verdict.phase`,
planned by :mod:`lossevo.verdict.plan`) retrain the finalists and the baselines with fresh seeds;
this module turns their journal rows into the verdict:

* Selection used validation data only (rungs, promotions, finalists, and the order of
  ``best_k.yaml``, by the validation mean here); the verdict reports **test accuracy** at the end
  of each validation training, with validation accuracy beside it.
* Per finalist and baseline, in every cell (a setting at a budget): the mean paired difference
  with its 95% interval, the one-sided paired t-test, Welch's beside it, the pairs' correlation
  (:mod:`lossevo.verdict.statistics`). A finalist beats the baselines only when it beats each of
  them (intersection-union: the largest p), Holm-adjusted over the finalists, with every
  validation run finished.
* The sentence names every finalist that beats every baseline in the headline cell (the search's
  own setting at its longest budget), or says that none does and what difference the verdict
  could have detected at 80% power. The other cells say whether it transfers ("wins k of m").
* Alongside: how far the cheap ranking can be trusted (:mod:`lossevo.verdict.faithfulness`), what
  the search and the verdict cost (:mod:`lossevo.verdict.cost`), and every look at the verdict
  (a plan extended after seeing a p-value says so).
"""

from __future__ import annotations

import csv
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lossevo.results import Status
from lossevo.store.journal import Journal, Look, ValidationRow
from lossevo.verdict.cost import CostLine, cost
from lossevo.verdict.faithfulness import MIN_LOSSES, Agreement, faithfulness
from lossevo.verdict.plan import Finalist, ValidationCell, ValidationPlan
from lossevo.verdict.statistics import Comparison, compare, holm, intersection_union

POWER = 0.8


@dataclass
class LossRuns:
    """One loss's validation runs in one cell: test and validation accuracy per run index."""

    name: str
    equation: str
    planned: int
    test: dict[int, float] = field(default_factory=dict)  # finished runs
    val: dict[int, float] = field(default_factory=dict)
    failed: int = 0
    finalist: Finalist | None = None  # None: a baseline

    @property
    def finished(self) -> int:
        return len(self.test)

    @property
    def missing(self) -> int:
        return self.planned - self.finished - self.failed

    @property
    def test_mean(self) -> float:
        return _mean(self.test)

    @property
    def test_std(self) -> float:
        return _std(self.test)

    @property
    def val_mean(self) -> float:
        return _mean(self.val)

    @property
    def val_std(self) -> float:
        return _std(self.val)


def _mean(values: dict[int, float]) -> float:
    return float(np.mean(list(values.values()))) if values else math.nan


def _std(values: dict[int, float]) -> float:
    return float(np.std(list(values.values()), ddof=1)) if len(values) > 1 else math.nan


@dataclass
class FinalistResult:
    """A finalist in one cell: its runs and its comparison with every baseline."""

    runs: LossRuns
    comparisons: list[Comparison]  # one per baseline, in the plan's order
    p: float  # intersection-union: "better than every baseline"
    p_holm: float = math.nan  # Holm-adjusted over the finalists (a missing p counts as 1)
    alpha: float = 0.05

    @property
    def beats(self) -> bool:
        """Better than every baseline at level alpha (Holm), with every validation run finished."""
        complete = self.runs.failed == 0 and self.runs.missing == 0
        return complete and not math.isnan(self.p_holm) and self.p_holm < self.alpha

    @property
    def binding(self) -> Comparison | None:
        """The comparison that decides: the baseline the finalist is least clearly better than."""
        if not self.comparisons:
            return None
        return max(self.comparisons, key=lambda c: (1.0 if math.isnan(c.p) else c.p, -c.difference))

    @property
    def detectable(self) -> float:
        """The difference this cell could detect against every baseline (the largest)."""
        values = [c.detectable for c in self.comparisons if not math.isnan(c.detectable)]
        return max(values) if values else math.nan


@dataclass
class CellVerdict:
    cell: ValidationCell
    finalists: list[FinalistResult]  # in the plan's order
    baselines: list[LossRuns]

    @property
    def complete(self) -> bool:
        return all(r.missing == 0 for r in [*self.baselines, *(f.runs for f in self.finalists)])

    @property
    def done(self) -> tuple[int, int]:
        every = [*self.baselines, *(f.runs for f in self.finalists)]
        return sum(r.finished + r.failed for r in every), sum(r.planned for r in every)


def _runs(rows: list[ValidationRow], name: str, equation: str, planned: int, f: Finalist | None) -> LossRuns:
    runs = LossRuns(name, equation, planned, finalist=f)
    for r in rows:
        if r.loss != name or r.run >= planned:
            continue
        if r.status == Status.FAILED:
            runs.failed += 1
        elif r.test_acc is not None and r.fitness is not None:  # older rows have no test accuracy
            runs.test[r.run] = r.test_acc
            runs.val[r.run] = r.fitness
    return runs


def _cell_verdict(journal: Journal, plan: ValidationPlan, cell: ValidationCell) -> CellVerdict:
    rows = journal.validations(cell.steps, cell.setting)
    baselines = [_runs(rows, b.name, b.equation, plan.runs, None) for b in plan.baselines]
    # The detectable difference at the level of Holm's first step (alpha over the finalists).
    level = plan.alpha / max(1, len(plan.finalists))
    results = []
    for f in plan.finalists:
        runs = _runs(rows, f.name, f.equation, plan.runs, f)
        comparisons = [compare(runs.test, b.test, b.name, level) for b in baselines]
        results.append(
            FinalistResult(
                runs, comparisons, intersection_union([c.p for c in comparisons]), alpha=plan.alpha
            )
        )
    for result, p in zip(results, holm([r.p for r in results]), strict=True):
        result.p_holm = p
    return CellVerdict(cell, results, baselines)


@dataclass
class Verdict:
    plan: ValidationPlan
    cells: list[CellVerdict]  # the headline first
    taus: list[Agreement]
    looks: list[Look]
    costs: list[CostLine]

    @classmethod
    def from_journal(cls, journal: Journal, plan: ValidationPlan) -> Verdict:
        cells = [_cell_verdict(journal, plan, c) for c in plan.cells]
        return cls(
            plan, cells, faithfulness(journal, set(plan.prescreened)), journal.looks(), cost(journal, plan)
        )

    @classmethod
    def load(cls, journal: Journal) -> Verdict | None:
        """The verdict recorded in a search's journal (None: the search has none yet)."""
        plan = ValidationPlan.load(journal)
        return None if plan is None else cls.from_journal(journal, plan)

    # ------------------------------------------------------------------ reading it
    @property
    def headline(self) -> CellVerdict:
        return self.cells[0]

    @property
    def ordered(self) -> list[FinalistResult]:
        """The headline's finalists by their *validation* mean (what selects; test only reports)."""
        return sorted(
            self.headline.finalists, key=lambda f: (-np.nan_to_num(f.runs.val_mean, nan=-1.0), f.runs.name)
        )

    def name(self, f: FinalistResult) -> str:
        """``best_<k>``: its rank in ``best_k.yaml``."""
        names = [o.runs.name for o in self.ordered]
        return f"best_{names.index(f.runs.name) + 1}"

    @property
    def winners(self) -> list[FinalistResult]:
        return [f for f in self.ordered if f.beats]

    @property
    def beats(self) -> bool:
        return bool(self.winners)

    def wins(self, name: str) -> tuple[int, int]:
        """In how many cells the finalist ``name`` beats every baseline, of how many."""
        mine = [f for cell in self.cells for f in cell.finalists if f.runs.name == name]
        return sum(f.beats for f in mine), len(mine)

    def sentence(self) -> str:
        head = self.headline
        where = f"{self.plan.runs} runs at {head.cell.label}"
        baselines = ", ".join(b.name for b in self.plan.baselines)
        if not head.finalists:
            return f"no candidate finished its search training: nothing to test against {baselines}"
        done, planned = head.done
        if done < planned:
            return (
                f"the verdict is incomplete: {done} of {planned} validation trainings at {head.cell.label} "
                "are done; run the search's command again (same hydra.run.dir) to finish it"
            )
        too_few = [r.name for r in [*head.baselines, *(f.runs for f in head.finalists)] if r.finished < 2]
        if too_few:
            return (
                f"too few finished validation runs to test ({', '.join(too_few)}; {where}); "
                "validate with validate.runs >= 2"
            )
        if self.winners:
            parts = [f"{self.name(f)} ({f.runs.name}) {_ms(f.runs)}" for f in self.winners]
            evidence = "; ".join(self._evidence(f, every=True) for f in self.winners)
            return (
                f"{' and '.join(parts)} beat{'s' if len(parts) == 1 else ''} every baseline on test accuracy "
                f"({evidence}), {where}"
            )
        best = self.ordered[0]
        label = f"{self.name(best)} ({best.runs.name})"
        if best.runs.failed:
            return (
                f"no finalist beats every baseline reliably: the best, {label}, failed {best.runs.failed} of "
                f"{best.runs.planned} validation runs; {where}"
            )
        detectable = best.detectable
        could = (
            (
                f"; with {self.plan.runs} runs and this spread the verdict could detect a "
                f"{_points(detectable)}-point difference at {POWER:.0%} power"
            )
            if not math.isnan(detectable)
            else ""
        )
        return (
            f"no finalist beats every baseline at this budget: the best, {label}, {_ms(best.runs)} test "
            f"({self._evidence(best)}){could}; {where}"
        )

    def resolution(self) -> str:
        """What the headline could detect: the difference against every baseline found with 80%
        probability by these runs at this spread (the largest over the finalists)."""
        values = [f.detectable for f in self.headline.finalists if not math.isnan(f.detectable)]
        if not values:
            return "resolution: not measurable (fewer than 2 paired runs)"
        return (
            f"resolution: a {_points(max(values))}-point difference against every baseline is detected "
            f"with {POWER:.0%} probability ({self.plan.runs} runs, {self.headline.cell.label})"
        )

    def _evidence(self, f: FinalistResult, every: bool = False) -> str:
        """The paired difference (points, 95% interval) against the deciding baseline, or against
        each (``every``), and the p-value of "better than every baseline"."""
        shown = f.comparisons if every else [c for c in [f.binding] if c is not None]
        if not shown:
            return ""
        differences = ", ".join(
            f"vs {c.baseline} {_signed_points(c.difference)} points [{_points(c.low)}, {_points(c.high)}]"
            for c in shown
        )
        m = len(self.headline.finalists)
        holm_note = f", Holm over {m}: {pstr(f.p_holm)}" if m > 1 else ""
        against = " against every baseline" if every and len(f.comparisons) > 1 else ""
        return f"{differences}; p = {pstr(f.p)}{against}{holm_note}"

    # ------------------------------------------------------------------ files
    COLUMNS = (
        "setting",
        "steps",
        "loss",
        "role",
        "candidate",
        "equation",
        "runs",
        "finished",
        "failed",
        "test_mean",
        "test_std",
        "val_mean",
        "val_std",
        "p_every_baseline",
        "p_holm",
        "beats",
        "rung",
        "rung_fitness",
    )
    COMPARISON_COLUMNS = (
        "setting",
        "steps",
        "loss",
        "baseline",
        "pairs",
        "difference",
        "low",
        "high",
        "sd",
        "p_paired",
        "p_welch",
        "correlation",
        "detectable",
        "level",
    )

    def rows(self) -> list[list[Any]]:
        out = []
        for cell in self.cells:
            c = cell.cell
            for f in sorted(cell.finalists, key=lambda f: self.name(self._headline_of(f))):
                r, fin = f.runs, f.runs.finalist
                out.append(
                    [
                        c.setting,
                        c.steps,
                        self.name(self._headline_of(f)),
                        "finalist",
                        fin.candidate_id if fin else None,
                        r.equation,
                        r.planned,
                        r.finished,
                        r.failed,
                        num(r.test_mean),
                        num(r.test_std),
                        num(r.val_mean),
                        num(r.val_std),
                        num(f.p),
                        num(f.p_holm),
                        f.beats,
                        fin.rung if fin else None,
                        num(fin.rung_fitness) if fin else None,
                    ]
                )
            for r in cell.baselines:
                out.append(
                    [
                        c.setting,
                        c.steps,
                        r.name,
                        "baseline",
                        None,
                        r.equation,
                        r.planned,
                        r.finished,
                        r.failed,
                        num(r.test_mean),
                        num(r.test_std),
                        num(r.val_mean),
                        num(r.val_std),
                        None,
                        None,
                        None,
                        None,
                        None,
                    ]
                )
        return out

    def comparison_rows(self) -> list[list[Any]]:
        out = []
        for cell in self.cells:
            for f in sorted(cell.finalists, key=lambda f: self.name(self._headline_of(f))):
                for c in f.comparisons:
                    out.append(
                        [
                            cell.cell.setting,
                            cell.cell.steps,
                            self.name(self._headline_of(f)),
                            c.baseline,
                            c.n,
                            num(c.difference),
                            num(c.low),
                            num(c.high),
                            num(c.sd),
                            num(c.p),
                            num(c.p_welch),
                            num(c.correlation),
                            num(c.detectable),
                            c.level,
                        ]
                    )
        return out

    def _headline_of(self, f: FinalistResult) -> FinalistResult:
        return next(h for h in self.headline.finalists if h.runs.name == f.runs.name)

    def write(self, folder: Path) -> dict[str, Path]:
        """``validation.csv`` (a row per loss and cell), ``comparisons.csv`` (a row per finalist,
        baseline and cell) and ``verdict.md`` in ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        files = {
            "validation": folder / "validation.csv",
            "comparisons": folder / "comparisons.csv",
            "verdict": folder / "verdict.md",
        }
        for key, columns, rows in (
            ("validation", self.COLUMNS, self.rows()),
            ("comparisons", self.COMPARISON_COLUMNS, self.comparison_rows()),
        ):
            with files[key].open("w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(columns)
                writer.writerows(rows)
        files["verdict"].write_text("\n".join(self.markdown()) + "\n")
        return files

    def markdown(self) -> list[str]:
        plan = self.plan
        md = ["# Verdict", "", f"**{self.sentence()}**", ""]
        md.append(
            f"Test accuracy at the end of each validation training, validation accuracy beside it: the "
            f"finalists were chosen on validation data only. Every loss trained {plan.runs} times per cell "
            f"with fresh seeds (run r of every loss shares its seeds, so losses are compared in pairs). "
            f"A finalist beats the baselines when it beats each of them: one-sided paired t-tests, the "
            f"largest p over the baselines, Holm-adjusted over {len(plan.finalists)} finalist"
            f"{'' if len(plan.finalists) == 1 else 's'}, level {plan.alpha}, every run finished."
        )
        for i, cell in enumerate(self.cells):
            label = cell.cell.label
            md += ["", f"## Headline: {label}" if i == 0 else f"## {label[:1].upper()}{label[1:]}", ""]
            md += self._cell_table(cell)
        if len(self.cells) > 1:
            md += [
                "",
                "## Does it transfer?",
                "",
                "Against the baseline each finalist is least clearly better than, in every cell.",
                "",
            ]
            md += self._transfer_table()
        md += ["", "## Faithfulness of the ranking (Kendall τ, bootstrap 95% interval)", ""]
        if self.taus:
            md += ["| between | τ | 95% interval | p | losses |", "|---|---|---|---|---|"]
            for a in self.taus:
                md.append(
                    f"| {a.label} | {_cell(num(a.tau.tau), 3)} | [{_cell(num(a.low), 2)}, "
                    f"{_cell(num(a.high), 2)}] | {_cell(num(a.tau.p), 3)} | {a.tau.n} |"
                )
        else:
            md.append(
                f"Not measured: no two rungs share {MIN_LOSSES} or more candidates, and no rung trained "
                "several seeds (search.fidelity.runs)."
            )
        md += [
            "",
            "## Cost",
            "",
            f"| phase | where | trainings | steps | seconds | {'GPU' if plan.gpu else 'CPU'}-hours |",
            "|---|---|---|---|---|---|",
        ]
        for line in self.costs:
            md.append(
                f"| {line.phase} | {line.where} | {line.trainings} | {line.steps:,} | {line.seconds:,.0f} | "
                f"{line.seconds / 3600:.3f} |"
            )
        total = {
            phase: sum(c.seconds for c in self.costs if c.phase == phase) for phase in ("search", "verdict")
        }
        md.append(
            f"| all | | {sum(c.trainings for c in self.costs)} | {sum(c.steps for c in self.costs):,} | "
            f"{sum(total.values()):,.0f} | {sum(total.values()) / 3600:.3f} |"
        )
        md += ["", "## Looks at this verdict", ""]
        for n, look in enumerate(self.looks, start=1):
            p = look.plan
            md.append(
                f"{n}. {time.strftime('%Y-%m-%d %H:%M', time.gmtime(look.at))} UTC: {p['runs']} runs, "
                f"steps {', '.join(f'{s:,}' for s in p['steps'])}, settings "
                f"{', '.join(s or 'the search' for s in p['settings'])}, top_k {p['top_k']}, alpha "
                f"{p['alpha']}, baselines {', '.join(p['baselines'])}"
            )
        if len(self.looks) > 1:
            md += [
                "",
                f"This verdict was computed with {len(self.looks)} plans. Its p-values assume one plan "
                "fixed in advance: a plan extended after seeing a p-value overstates the evidence.",
            ]
        return md

    def _cell_table(self, cell: CellVerdict) -> list[str]:
        names = [b.name for b in cell.baselines]
        head = (
            "| loss | finished | test | validation | "
            + " | ".join(f"vs {n}: Δ points [95%], p (Welch), r" for n in names)
            + " | p, every baseline (Holm) | beats |"
        )
        out = [head, "|" + "---|" * (6 + len(names))]
        for f in sorted(cell.finalists, key=lambda f: self.name(self._headline_of(f))):
            r = f.runs
            comps = " | ".join(
                f"{_signed_points(c.difference)} [{_points(c.low)}, {_points(c.high)}], "
                f"{pstr(c.p)} ({pstr(c.p_welch)}), {_cell(num(c.correlation), 2)}"
                for c in f.comparisons
            )
            out.append(
                f"| {self.name(self._headline_of(f))} ({r.name}) | {_finished(r)} | {_ms(r)} | "
                f"{_ms(r, 'val')} | {comps} | {pstr(f.p)} ({pstr(f.p_holm)}) | {'yes' if f.beats else 'no'} |"
            )
        for r in cell.baselines:
            out.append(
                f"| {r.name} | {_finished(r)} | {_ms(r)} | {_ms(r, 'val')} |" + " |" * (len(names) + 2)
            )
        detectable = [f.detectable for f in cell.finalists if not math.isnan(f.detectable)]
        if detectable:
            level = cell.finalists[0].comparisons[0].level if cell.finalists[0].comparisons else math.nan
            out += [
                "",
                f"With these runs and spreads, a true difference of {_points(max(detectable))} points "
                f"against every baseline is detected with {POWER:.0%} probability (one-sided paired "
                f"t-test at level {level:.3g}, Holm's first step).",
            ]
        out += ["", "| loss | equation |", "|---|---|"]
        out += [
            f"| {r.name} | `{r.equation}` |" for r in [*(f.runs for f in cell.finalists), *cell.baselines]
        ]
        return out

    def _transfer_table(self) -> list[str]:
        out = [
            "| finalist | " + " | ".join(c.cell.label for c in self.cells) + " | wins |",
            "|" + "---|" * (len(self.cells) + 2),
        ]
        for f in self.ordered:
            cells = []
            for cell in self.cells:
                mine = next(x for x in cell.finalists if x.runs.name == f.runs.name)
                c = mine.binding
                cells.append(
                    ""
                    if c is None
                    else f"{_signed_points(c.difference)} [{_points(c.low)}, "
                    f"{_points(c.high)}] vs {c.baseline}, p {pstr(mine.p)}{' ✓' if mine.beats else ''}"
                )
            won, of = self.wins(f.runs.name)
            out.append(f"| {self.name(f)} | " + " | ".join(cells) + f" | {won} of {of} |")
        return out

    def track(self, tracker: Any) -> None:
        """The verdict on W&B: its tables, the sentence, the cost."""
        tracker.table("validation", list(self.COLUMNS), self.rows())
        tracker.table("comparisons", list(self.COMPARISON_COLUMNS), self.comparison_rows())
        tracker.table(
            "faithfulness",
            ["between", "tau", "low", "high", "p", "n"],
            [[a.label, num(a.tau.tau), num(a.low), num(a.high), num(a.tau.p), a.tau.n] for a in self.taus],
        )
        tracker.table(
            "cost",
            ["phase", "where", "trainings", "steps", "seconds"],
            [[c.phase, c.where, c.trainings, c.steps, c.seconds] for c in self.costs],
        )
        summary: dict[str, Any] = {"verdict": self.sentence(), "verdict/beats_baselines": self.beats}
        for phase in ("search", "verdict"):
            seconds = sum(c.seconds for c in self.costs if c.phase == phase)
            summary[f"cost/{phase}_seconds"] = seconds
            summary[f"cost/{phase}_steps"] = sum(c.steps for c in self.costs if c.phase == phase)
            if self.plan.gpu:
                summary[f"cost/{phase}_gpu_hours"] = seconds / 3600
        tracker.summary(summary)


def num(value: float | None) -> float | None:
    """A number for tables and metadata, with NaN (not measured) as None."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _cell(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _ms(r: LossRuns, which: str = "test") -> str:
    values = r.test if which == "test" else r.val
    if not values:
        return "no finished run"
    mean, std = (r.test_mean, r.test_std) if which == "test" else (r.val_mean, r.val_std)
    return f"{mean:.3f}" + (f" ± {std:.3f}" if len(values) > 1 else "")


def _finished(r: LossRuns) -> str:
    text = f"{r.finished}/{r.planned}"
    return text + (f" ({r.failed} failed)" if r.failed else "")


def _points(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.2f}"


def _signed_points(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:+.2f}"


def pstr(p: float | None) -> str:
    """A p-value to two significant digits, ``n/a`` when not measured."""
    return "n/a" if p is None or math.isnan(p) else f"{p:.2g}"
