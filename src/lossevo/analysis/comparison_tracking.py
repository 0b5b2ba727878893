"""The W&B run of a comparison of searches (``lossevo compare``, or a sweep's end).

One run of job type ``compare`` in the W&B group of the folder the comparison is written to (a
multirun's root), so ``lossevo dashboard <root>`` finds it beside the searches' own runs. It logs
what ``comparison.md`` shows, read from the same :class:`Comparison` (nothing is computed here):
the searches, success rates, leads, contrasts and ledger as tables; the anytime curves as line
plots (every group on one grid of training steps: mean and 95% band); the plots as images; the
sentences and each group's success rate in the summary.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from lossevo.analysis.comparison import Comparison
from lossevo.analysis.comparison_report import anytime_band, search_rows, sentences
from lossevo.tracking.tracker import Tracker, group_for

GRID = 60  # points of the anytime curves


def track_comparison(comparison: Comparison, files: dict[str, Path], logger: Any) -> str | None:
    """Log ``comparison`` as one W&B run beside ``files`` (``logger``: a logger config, e.g. the
    searches' own; None or mode disabled: nothing). Returns the run's mode, or None when off."""
    folder = files["markdown"].parent
    tracker = Tracker(logger, folder, group_for(folder), "compare", name="comparison")
    if not tracker.active:
        return None
    try:
        _log(comparison, files, tracker)
    finally:
        tracker.finish()
    return tracker.mode


def _log(comparison: Comparison, files: dict[str, Path], tracker: Tracker) -> None:
    header, rows = search_rows(comparison)
    tracker.table("searches", header, rows)
    tracker.table(
        "success",
        ["group", "steps", "successes", "searches", "low", "high", "interval"],
        [
            [s.group.label, r.steps, r.successes, r.n, r.low, r.high, r.method]
            for s in comparison.groups
            for r in s.success
        ],
    )
    tracker.table(
        "leads",
        ["group", "baseline", "steps", "searches", "mean", "low", "high", "interval"],
        [
            [s.group.label, x.baseline, x.steps, len(x.leads), x.mean, _n(x.low), _n(x.high), x.method]
            for s in comparison.groups
            for x in s.leads
        ],
    )
    tracker.table(
        "contrasts",
        ["a", "b", "steps", "mean_a", "mean_b", "difference", "low", "high", "p", "n_a", "n_b", "sentence"],
        [
            [
                c.a,
                c.b,
                c.steps,
                c.mean_a,
                c.mean_b,
                c.difference,
                c.low,
                c.high,
                c.p,
                c.n_a,
                c.n_b,
                c.sentence,
            ]
            for c in comparison.contrasts
        ],
    )
    tracker.table(
        "ledger",
        ["search", "group", "p", "beats", "p_holm_across_verdicts", "still_beats"],
        [[e.search, e.group, e.p, e.beats, e.p_adjusted, e.beats_adjusted] for e in comparison.ledger],
    )
    tracker.images({f"{key}_plot": files[key] for key in ("anytime", "leads") if key in files})
    top = max((r.search_steps for s in comparison.groups for r in s.group.searches), default=0)
    grid = np.linspace(0, top, GRID)
    bands = {s.group.label: anytime_band(s, grid) for s in comparison.groups}
    for i, steps in enumerate(grid):
        point: dict[str, Any] = {"anytime/training_steps": float(steps)}
        for label, (mean, low, high) in bands.items():
            point.update(
                {
                    f"anytime/{label}": _n(mean[i]),
                    f"anytime/{label} low": _n(low[i]),
                    f"anytime/{label} high": _n(high[i]),
                }
            )
        tracker.log(point)
    summary: dict[str, Any] = {
        "comparison": "\n".join(sentences(comparison)),
        "notes": "\n".join(comparison.notes),
    }
    for s in comparison.groups:
        for r in s.success:
            summary[f"success/{s.group.label}/{r.steps}"] = r.successes / r.n if r.n else None
    tracker.summary(summary)


def _n(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value
