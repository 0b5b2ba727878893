"""Result sets of final trainings and their statistics (MH-AUG Tables 5-6, MH-NLE Table 8).

A result set is ``results.csv`` as ``train.py`` writes it (one row per seed: loss, setting,
seed, status, best validation accuracy, test accuracy, steps, seconds). From any number of them:
a table of mean ± std per loss × setting with the best of each setting marked and one-sided
Welch t-test p-values against a reference loss (H1: the loss's mean is higher); a two-sample
t-test between any two result sets (the dissertation's ``ttest``); and a collated CSV.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import ttest_ind

from lossevo.errors import LossevoError
from lossevo.results import Status
from lossevo.verdict.statistics import welch_greater

COLUMNS = ["loss", "setting", "seed", "status", "val_acc", "test_acc", "steps", "seconds", "equation"]
METRICS = ("test_acc", "val_acc")


def write_results(path: Path, rows: Iterable[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_results(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Rows of every ``results.csv`` given, or found under the given folders."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(p.rglob("results.csv"))
        elif p.is_file():
            files.append(p)
        else:
            raise LossevoError(f"{p} does not exist; give results.csv files or folders holding them")
    if not files:
        raise LossevoError(f"no results.csv under {', '.join(map(str, paths))}; train with train.py first")
    rows = []
    for f in files:
        with f.open() as fh:
            for row in csv.DictReader(fh):
                missing = {"loss", "setting", "status", *METRICS} - set(row)
                if missing:
                    raise LossevoError(f"{f} is not a lossevo results.csv (no {', '.join(sorted(missing))})")
                row["source"] = str(f)
                rows.append(row)
    return rows


def values(rows: Iterable[dict[str, Any]], metric: str) -> np.ndarray:
    """The metric of the finished rows (failed runs carry no accuracy)."""
    if metric not in METRICS:
        raise LossevoError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    finished = [r for r in rows if r["status"] == Status.DONE and r[metric] not in ("", None)]
    return np.array([float(r[metric]) for r in finished])


@dataclass
class Cell:
    mean: float
    std: float  # sample standard deviation (ddof=1); NaN for one run
    n: int
    p: float | None = None  # one-sided Welch p against the reference (None: not computed)
    best: bool = False


def summary(
    rows: list[dict[str, Any]], metric: str = "test_acc", reference: str | None = "cross_entropy"
) -> tuple[list[str], list[str], dict[tuple[str, str], Cell]]:
    """``(losses, settings, cells)``: mean ± std per (loss, setting), best marked per setting,
    p-values against ``reference`` in the same setting."""
    losses = sorted({r["loss"] for r in rows}, key=lambda n: (n != reference, n))
    settings = sorted({r["setting"] for r in rows})
    cells: dict[tuple[str, str], Cell] = {}
    for s in settings:
        for loss in losses:
            v = values((r for r in rows if r["loss"] == loss and r["setting"] == s), metric)
            if len(v):
                std = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
                cells[(loss, s)] = Cell(float(np.mean(v)), std, len(v))
        present = [cells[(loss, s)] for loss in losses if (loss, s) in cells]
        if present:
            top = max(c.mean for c in present)
            for c in present:
                c.best = c.mean == top
        if reference is not None:
            ref = values((r for r in rows if r["loss"] == reference and r["setting"] == s), metric)
            for loss in losses:
                if loss != reference and (loss, s) in cells:
                    v = values((r for r in rows if r["loss"] == loss and r["setting"] == s), metric)
                    cells[(loss, s)].p = welch_greater(v, ref)
    return losses, settings, cells


def _fmt(c: Cell | None, percent: bool, latex: bool = False) -> str:
    if c is None:
        return "–"
    scale = 100.0 if percent else 1.0
    digits = 2 if percent else 4
    text = f"{scale * c.mean:.{digits}f}"
    if not math.isnan(c.std):
        text += (r" $\pm$ " if latex else " ± ") + f"{scale * c.std:.{digits}f}"
    if c.best:
        text = rf"\textbf{{{text}}}" if latex else f"**{text}**"
    if c.p is not None and not math.isnan(c.p):
        text += f" (p={c.p:.3g})"
    return text


def markdown_table(
    losses: list[str], settings: list[str], cells: dict[tuple[str, str], Cell], percent: bool = True
) -> str:
    lines = ["| loss | " + " | ".join(settings) + " |", "|---" * (len(settings) + 1) + "|"]
    for loss in losses:
        lines.append(
            f"| {loss} | " + " | ".join(_fmt(cells.get((loss, s)), percent) for s in settings) + " |"
        )
    return "\n".join(lines) + "\n"


def latex_table(
    losses: list[str], settings: list[str], cells: dict[tuple[str, str], Cell], percent: bool = True
) -> str:
    def esc(text: str) -> str:
        return text.replace("_", r"\_")

    lines = [
        r"\begin{tabular}{l" + "c" * len(settings) + "}",
        r"\toprule",
        "Loss & " + " & ".join(esc(s) for s in settings) + r" \\",
        r"\midrule",
    ]
    for loss in losses:
        row = " & ".join(_fmt(cells.get((loss, s)), percent, latex=True) for s in settings)
        lines.append(f"{esc(loss)} & {row} " + r"\\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def summary_csv(
    path: Path, losses: list[str], settings: list[str], cells: dict[tuple[str, str], Cell]
) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["loss", "setting", "mean", "std", "n", "best", "p_vs_reference"])
        for loss in losses:
            for s in settings:
                c = cells.get((loss, s))
                if c is not None:
                    writer.writerow([loss, s, c.mean, c.std, c.n, c.best, "" if c.p is None else c.p])
    return path


@dataclass
class TTest:
    mean_a: float
    mean_b: float
    n_a: int
    n_b: int
    t: float
    p_two_sided: float
    p_a_greater: float


def two_sample(a: np.ndarray, b: np.ndarray) -> TTest:
    """Welch's t-test between two result sets."""
    if len(a) < 2 or len(b) < 2:
        raise LossevoError(
            f"a t-test needs at least 2 finished runs on each side (got {len(a)} and {len(b)})"
        )
    two = ttest_ind(a, b, equal_var=False)
    greater = ttest_ind(a, b, equal_var=False, alternative="greater")
    return TTest(
        float(a.mean()),
        float(b.mean()),
        len(a),
        len(b),
        float(two.statistic),
        float(two.pvalue),
        float(greater.pvalue),
    )
