"""The verdict's rows written out: ``validation.csv``, ``comparisons.csv``, ``tuning.csv`` (a tuned
verdict) and ``verdict.md`` in a run folder, and the same tables on W&B. A column is a row field;
nothing here computes."""

from __future__ import annotations

import csv
from dataclasses import astuple
from pathlib import Path
from typing import Any

from lossevo.verdict.formatting import num
from lossevo.verdict.markdown import markdown
from lossevo.verdict.rows import ComparisonRow, LossRow, Verdict, columns
from lossevo.verdict.sentence import confidence, sentence
from lossevo.verdict.tuning import TuningResult


def table(rows: list[LossRow] | list[ComparisonRow] | list[TuningResult]) -> list[list[Any]]:
    """Rows as table cells, NaN (not measured) as empty."""
    return [[num(v) if isinstance(v, float) else v for v in astuple(r)] for r in rows]


def write_verdict(verdict: Verdict, folder: Path) -> dict[str, Path]:
    """``validation.csv`` (a row per loss and cell), ``comparisons.csv`` (a row per finalist,
    baseline and cell), ``tuning.csv`` (a row per loss and grid point, when tuned) and
    ``verdict.md`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "validation": folder / "validation.csv",
        "comparisons": folder / "comparisons.csv",
        "verdict": folder / "verdict.md",
    }
    tables: list[tuple[str, type, Any]] = [
        ("validation", LossRow, verdict.losses),
        ("comparisons", ComparisonRow, verdict.comparisons),
    ]
    if verdict.plan.tune is not None:
        files["tuning"] = folder / "tuning.csv"
        tables.append(("tuning", TuningResult, verdict.tuning))
    for key, row_type, rows in tables:
        with files[key].open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns(row_type))
            writer.writerows(table(rows))
    files["verdict"].write_text("\n".join(markdown(verdict)) + "\n")
    return files


def track_verdict(verdict: Verdict, tracker: Any) -> None:
    """The verdict on W&B: its tables, the sentence, the cost."""
    tracker.table("validation", columns(LossRow), table(verdict.losses))
    tracker.table("comparisons", columns(ComparisonRow), table(verdict.comparisons))
    if verdict.plan.tune is not None:
        tracker.table("tuning", columns(TuningResult), table(verdict.tuning))
    tracker.table(
        "faithfulness",
        ["between", "tau", "low", "high", "p", "n"],
        [[a.label, num(a.tau.tau), num(a.low), num(a.high), num(a.tau.p), a.tau.n] for a in verdict.taus],
    )
    tracker.table(
        "cost",
        ["phase", "where", "trainings", "steps", "seconds", "reused"],
        [[c.phase, c.where, c.trainings, c.steps, c.seconds, c.reused] for c in verdict.costs],
    )
    summary: dict[str, Any] = {"verdict": sentence(verdict), "verdict/beats_baselines": int(verdict.beats)}
    summary.update(verdict_metrics(verdict))
    for phase in ("search", "verdict"):
        seconds = sum(c.seconds for c in verdict.costs if c.phase == phase)
        summary[f"cost/{phase}_seconds"] = seconds
        summary[f"cost/{phase}_steps"] = sum(c.steps for c in verdict.costs if c.phase == phase)
        if verdict.plan.gpu:
            summary[f"cost/{phase}_gpu_hours"] = seconds / 3600
    tracker.summary(summary)


def verdict_metrics(verdict: Verdict) -> dict[str, float | int | None]:
    """The headline as numbers (W&B summary keys a sweep can optimise): each finalist's test
    accuracy, its lead over each baseline (fraction of 1), its p against every baseline and 0/1 beats."""
    out: dict[str, float | int | None] = {}
    for r in verdict.finalists():
        key = f"verdict/{r.loss}"
        out[f"{key}/test_acc"] = num(r.test_mean)
        out[f"{key}/p"] = num(r.p_holm)
        out[f"{key}/beats"] = None if r.beats is None else int(r.beats)
        for c in verdict.against(r):
            out[f"{key}/lead_vs_{c.baseline}"] = num(c.difference)
    return out


def verdict_metadata(verdict: Verdict) -> dict[str, Any]:
    """The headline as plain data: the metadata of the search's ``loss`` artifact."""
    losses = []
    for r in verdict.finalists():
        losses.append(
            {
                "name": r.loss,
                "candidate": r.candidate,
                "equation": r.equation,
                "test_mean": num(r.test_mean),
                "test_std": num(r.test_std),
                "runs": r.finished,
                "beats_every_baseline": r.beats,
                "p": num(r.p_every_baseline),
                "p_holm": num(r.p_holm),
                "vs": {
                    c.baseline: {
                        "difference": num(c.difference),
                        "lower": num(c.lower),
                        "upper": num(c.upper),
                        "bounds": confidence(c.level),
                        "p": num(c.p_paired),
                    }
                    for c in verdict.against(r)
                },
            }
        )
    return {
        "verdict": verdict.sentence(),
        "beats_baselines": verdict.beats,
        "cell": verdict.headline.label,
        "runs": verdict.plan.runs,
        "baselines": [b.name for b in verdict.plan.baselines],
        "losses": losses,
    }
