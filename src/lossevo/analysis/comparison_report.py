"""``lossevo compare``'s files: ``comparison.md`` (sentences and tables), ``comparison.csv`` (one row
per search), ``anytime.png`` (the pick so far against training steps, mean and 95% band per group)
and ``leads.png`` (each group's pooled lead over each baseline, with its interval). They read a
:class:`~lossevo.analysis.comparison.Comparison` and compute nothing but the plotted band."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from lossevo.analysis.comparison import Comparison, GroupSummary
from lossevo.verdict.formatting import num


def write_comparison(comparison: Comparison, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "markdown": folder / "comparison.md",
        "csv": folder / "comparison.csv",
        "anytime": folder / "anytime.png",
        "leads": folder / "leads.png",
    }
    files["markdown"].write_text("\n".join(markdown(comparison)) + "\n")
    _write_csv(comparison, files["csv"])
    _plot_anytime(comparison, files["anytime"])
    if not _plot_leads(comparison, files["leads"]):
        del files["leads"]
    return files


def sentences(comparison: Comparison) -> list[str]:
    """What the comparison says, one line per group and per contrast."""
    out = []
    for s in comparison.groups:
        rates = (
            "; ".join(
                f"{r.successes} of {r.n} at {r.steps:,} steps [{r.low:.2f}, {r.high:.2f}]" for r in s.success
            )
            or "no complete verdict"
        )
        out.append(f"{s.group.label}: {len(s.group.searches)} searches; beats every baseline: {rates}")
    out += [c.sentence for c in comparison.contrasts]
    return out


def markdown(comparison: Comparison) -> list[str]:
    md = ["# Comparison of searches", ""]
    md += [f"- {line}" for line in sentences(comparison)]
    if comparison.notes:
        md += ["", "Notes:", ""] + [f"- {n}" for n in comparison.notes]
    md += [
        "",
        "## Groups",
        "",
        "| group | searches | pick's validation accuracy at the end [95%] | search steps | "
        "search seconds | verdict steps | verdict seconds | spent on trainings without a result |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in comparison.groups:
        mean, low, high = s.final
        md.append(
            f"| {s.group.label} | {len(s.group.searches)} | {_f(mean)} [{_f(low)}, {_f(high)}] | "
            f"{s.search_steps:,.0f} | {s.search_seconds:,.0f} | {s.verdict_steps:,.0f} | "
            f"{s.verdict_seconds:,.0f} | {_share(s.wasted_share)} |"
        )
    md += [
        "",
        "## How often a search finds a loss that beats every baseline",
        "",
        "A search counts once per verdict budget where its verdict is complete. Independent verdicts: "
        "Wilson 95% intervals; verdicts that share their baseline runs (a sweep's default) are not "
        "independent, so their interval is widened to a bootstrap that resamples the searches and the "
        "shared runs jointly, re-testing each pick (docs/methods.md §11).",
        "",
        "| group | steps | successes | searches | 95% interval | interval |",
        "|---|---|---|---|---|---|",
    ]
    for s in comparison.groups:
        for r in s.success:
            md.append(
                f"| {s.group.label} | {r.steps:,} | {r.successes} | {r.n} | [{r.low:.2f}, {r.high:.2f}] | "
                f"{r.method} |"
            )
    md += [
        "",
        "## The pick's lead over each baseline (test accuracy, points)",
        "",
        "Each search's best_1 against each baseline, paired over the verdict's runs; the mean across "
        "searches (the search is the unit) with a t-interval, widened, where the verdicts share their "
        "baseline runs, to a bootstrap that resamples the searches and those runs jointly.",
        "",
        "| group | baseline | steps | searches | mean lead | 95% interval | interval | each search |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in comparison.groups:
        for lead in s.leads:
            each = ", ".join(f"{100 * x:+.2f}" for x in lead.leads)
            md.append(
                f"| {s.group.label} | {lead.baseline} | {lead.steps:,} | {len(lead.leads)} | "
                f"{_pts(lead.mean)} | [{_pts(lead.low)}, {_pts(lead.high)}] | {lead.method} | {each} |"
            )
    survival = [(s, v) for s in comparison.groups for v in s.survival]
    if survival:
        md += [
            "",
            "## How much of the lead survives a longer budget",
            "",
            "| group | baseline | budgets | ratio of mean leads | 95% bootstrap interval |",
            "|---|---|---|---|---|",
        ]
        md += [
            f"| {s.group.label} | {v.baseline} | {v.short:,} -> {v.long:,} | {_f(v.ratio, 2)} | "
            f"[{_f(v.low, 2)}, {_f(v.high, 2)}] |"
            for s, v in survival
        ]
    if comparison.ledger:
        md += [
            "",
            "## Ledger of verdicts",
            "",
            f"Every verdict counted once: its own p (the smallest Holm p of its finalists at its headline), "
            f"and that p Holm-adjusted across the {len(comparison.ledger)} verdicts compared.",
            "",
            "| search | group | p | beats | p, Holm across verdicts | still beats |",
            "|---|---|---|---|---|---|",
        ]
        md += [
            f"| {e.search} | {e.group} | {e.p:.2g} | {'yes' if e.beats else 'no'} | {e.p_adjusted:.2g} | "
            f"{'yes' if e.beats_adjusted else 'no'} |"
            for e in comparison.ledger
        ]
    return md


def _write_csv(comparison: Comparison, path: Path) -> None:
    header, rows = search_rows(comparison)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


def search_rows(comparison: Comparison) -> tuple[list[str], list[list[Any]]]:
    """One row per search (``comparison.csv``, the W&B table ``searches``): its compute, its pick's
    validation accuracy at the end, its verdict and the pick's lead over each baseline."""
    baselines = sorted({(lead.baseline, lead.steps) for s in comparison.groups for lead in s.leads})
    header = [
        "group",
        "search",
        "seed",
        "candidates",
        "failed",
        "search_steps",
        "search_seconds",
        "wasted_steps",
        "final_pick_val",
        "verdict",
        "verdict_steps",
        "verdict_seconds",
        "beats_at_headline",
        *(f"lead_{b}_{steps}" for b, steps in baselines),
    ]
    rows = []
    for s in comparison.groups:
        for r in s.group.searches:
            v = r.verdict
            leads: dict[tuple[str, int], float] = {}
            if v is not None:
                for cell in v.cells:
                    picks = v.finalists(cell)
                    if picks and not cell.setting:
                        leads.update({(c.baseline, cell.steps): c.difference for c in v.against(picks[0])})
            rows.append(
                [
                    s.group.label,
                    str(r.folder),
                    r.seed,
                    r.candidates,
                    r.failed,
                    r.search_steps,
                    round(r.search_seconds, 3),
                    r.wasted_steps,
                    num(r.final),
                    v is not None,
                    r.verdict_steps,
                    round(r.verdict_seconds, 3),
                    None if v is None else v.beats,
                    *(num(leads.get(key, math.nan)) for key in baselines),
                ]
            )
    return header, rows


def _plot_anytime(comparison: Comparison, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for s in comparison.groups:
        grid = np.linspace(0, max(r.search_steps for r in s.group.searches), 60)
        mean, low, high = anytime_band(s, grid)
        line = ax.plot(grid, mean, label=f"{s.group.label} (n={len(s.group.searches)})")[0]
        ax.fill_between(grid, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("training steps of the search")
    ax.set_ylabel("the pick's validation accuracy")
    ax.set_title("Anytime: the pick so far (mean and 95% band across seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def anytime_band(summary: GroupSummary, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A group's pick so far at each of ``grid``'s training steps: mean and 95% t-band across seeds."""
    from scipy import stats

    searches = summary.group.searches
    values = np.array([[s.best_at(x) for x in grid] for s in searches])
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # steps before a search's first result
        mean = np.nanmean(values, axis=0) if len(searches) else grid * np.nan
        n = np.sum(~np.isnan(values), axis=0)
        sem = np.nanstd(values, axis=0, ddof=1) / np.sqrt(n)
        half = np.where(n > 1, stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sem, 0.0)
    return mean, mean - half, mean + half


def _plot_leads(comparison: Comparison, path: Path) -> bool:
    rows = [(s.group.label, lead) for s in comparison.groups for lead in s.leads]
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    for i, (_, lead) in enumerate(rows):
        low = lead.low if not math.isnan(lead.low) else lead.mean
        high = lead.high if not math.isnan(lead.high) else lead.mean
        ax.errorbar(
            100 * lead.mean,
            i,
            xerr=[[100 * (lead.mean - low)], [100 * (high - lead.mean)]],
            fmt="o",
            capsize=3,
        )
        ax.scatter([100 * x for x in lead.leads], [i] * len(lead.leads), s=8, color="grey", zorder=3)
    ax.set_yticks(
        range(len(rows)),
        [f"{label} vs {lead.baseline}, {lead.steps:,} steps" for label, lead in rows],
        fontsize=7,
    )
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("the pick's test-accuracy lead (points), mean and 95% interval across searches")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def _f(value: float, digits: int = 4) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def _pts(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:+.2f}"


def _share(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.0%}"
