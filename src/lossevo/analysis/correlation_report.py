"""The report of a correlation study (MH-AUG, Table 3 and Figures 3-4): what ``correlate.py`` writes.

``accuracy.csv`` (one row per loss: its cluster and mean accuracy per setting), ``kendall.csv``
(τ between every pair of settings, over all losses and over each pair's best ``top_k``),
``kendall.png`` and ``scatter.png``, ``correlation.md`` with the surrogate calibration against a
``target`` setting when one is given, and the same tables on W&B.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from lossevo.analysis import rank_correlation as rc
from lossevo.analysis.study import Study
from lossevo.config import plain
from lossevo.tracking.tracker import Tracker, group_for


@dataclass
class CorrelationReport:
    files: dict[str, Path]
    table: str  # the τ table as Markdown
    recommendation: rc.Recommendation | None


def write_correlation_report(study: Study, cfg: DictConfig, folder: Path) -> CorrelationReport:
    """Every file of the study's analysis, written to ``folder``, and its W&B run."""
    acc, names, cost = study.matrix()
    k = int(cfg.top_k)
    full, top = rc.kendall_matrix(acc), rc.kendall_matrix(acc, k)
    labels = rc.cluster_losses(acc, int(cfg.clusters))
    files: dict[str, Path] = {}

    path = folder / "accuracy.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["loss_id", "name", "cluster", *names, "equation"])
        for loss, row, label in zip(study.losses, acc, labels, strict=True):
            values = ["" if np.isnan(v) else f"{v:.6f}" for v in row]
            writer.writerow([loss.id, loss.name, int(label), *values, loss.equation])
    files["accuracy"] = path
    path = folder / "kendall.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["setting_a", "setting_b", "tau", "p", "n", f"tau_top{k}", f"p_top{k}", f"n_top{k}"])
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                f, t = full[i][j], top[i][j]
                writer.writerow([names[i], names[j], f.tau, f.p, f.n, t.tau, t.p, t.n])
    files["kendall"] = path
    table = rc.tau_markdown(names, full, top, k)
    files["heatmap"] = rc.plot_heatmap(names, full, folder / "kendall.png", "Kendall τ over all losses")
    files["scatter"] = rc.plot_scatter(acc, names, labels, folder / "scatter.png")
    trained = int(np.isfinite(acc).any(axis=1).sum())
    lines = [
        f"# Rank correlation of {len(study.losses)} losses across {len(names)} settings",
        "",
        f"Losses trained in at least one setting: {trained}; runs per cell: {study.runs}.",
        "",
        "| setting | overrides | trained | mean accuracy | s / training |",
        "|---|---|---|---|---|",
    ]
    for j, name in enumerate(names):
        column = acc[:, j]
        ok = np.isfinite(column)
        mean = f"{column[ok].mean():.4f}" if ok.any() else "-"
        lines.append(
            f"| {name} | `{' '.join(study.settings[name])}` | {int(ok.sum())} | {mean} | {cost[j]:.1f} |"
        )
    lines += ["", "## Kendall τ", "", table]
    recommendation = None
    if cfg.get("target") is not None:
        threshold = float(cfg.threshold)
        recommendation = rc.calibrate(acc, names, cost, str(cfg.target), threshold)
        lines += [
            f"## Surrogate calibration against `{cfg.target}` (τ ≥ {threshold})",
            "",
            "| surrogate | s / training | τ vs target | 95% interval | clears |",
            "|---|---|---|---|---|",
        ]
        for r in recommendation.rows:
            lines.append(
                f"| {r.setting} | {r.seconds:.1f} | {rc.tau_cell(r.agreement.tau)} | "
                f"{rc.interval(r.agreement)} | {'yes' if r.clears else 'no'} |"
            )
        verdict = (
            f"**Recommended surrogate: {rc.recommendation_line(recommendation)}**"
            if recommendation.setting
            else f"**No cheaper surrogate reaches τ ≥ {threshold} over at least {rc.MIN_LOSSES} losses.**"
        )
        lines += ["", verdict, ""]
    lines += ["![Kendall tau](kendall.png)", "", "![Scatter](scatter.png)", ""]
    files["report"] = folder / "correlation.md"
    files["report"].write_text("\n".join(lines))

    tracker = Tracker(
        cfg.get("logger"),
        folder,
        group=group_for(folder),
        job_type="correlate",
        name=f"correlate-{folder.name}",
        config=plain(cfg),
    )
    tracker.table(
        "accuracy",
        ["loss_id", "name", "cluster", *names, "equation"],
        [
            [s.id, s.name, int(c), *[None if np.isnan(v) else float(v) for v in row], s.equation]
            for s, row, c in zip(study.losses, acc, labels, strict=True)
        ],
    )
    tracker.table(
        "kendall",
        ["setting_a", "setting_b", "tau", "n", f"tau_top{k}", f"n_top{k}"],
        [
            [names[i], names[j], full[i][j].tau, full[i][j].n, top[i][j].tau, top[i][j].n]
            for i in range(len(names))
            for j in range(i + 1, len(names))
        ],
    )
    # One key per object: the table is ``kendall``, its heatmap ``kendall_heatmap``.
    tracker.images({"kendall_heatmap": files["heatmap"], "scatter": files["scatter"]})
    if recommendation is not None:
        tracker.summary({"recommended_surrogate": recommendation.setting})
    tracker.finish()
    return CorrelationReport(files, table, recommendation)
