"""The report of one search, from its journal (MH-NLE, Figure 4 and the appendix tables).

``fitness.png``: every candidate's fitness in evaluation order with the best, mean and median so
far, and the reference loss's fitness on the same surrogate; ``phenotypes.png``: the top losses'
binary phenotypes against cross-entropy; ``journal.csv`` / ``journal.md``: every candidate;
``equations.tex``: the top losses in LaTeX; with a verdict in the journal, ``verdict.md`` and
``validation.csv`` (finalists against the reference on fresh seeds, Kendall τ between rungs and
between seeds) as the search wrote them.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from lossevo.errors import LossevoError
from lossevo.results import FINISHED, Status
from lossevo.store.journal import CandidateRow, Journal, ReferenceRow
from lossevo.verdict.files import track_verdict, write_verdict
from lossevo.verdict.rows import Verdict

COLUMNS = ["id", "parent", "phase", "status", "fitness", "stop_reason", "seconds", "equation"]


def running_stats(fitness: list[float | None]) -> dict[str, np.ndarray]:
    """Best, mean and median of the finished fitnesses after each evaluation (NaN before any)."""
    seen: list[float] = []
    out: dict[str, list[float]] = {"best": [], "mean": [], "median": []}
    for f in fitness:
        if f is not None:
            seen.append(f)
        out["best"].append(max(seen) if seen else np.nan)
        out["mean"].append(float(np.mean(seen)) if seen else np.nan)
        out["median"].append(float(np.median(seen)) if seen else np.nan)
    return {k: np.array(v) for k, v in out.items()}


def plot_fitness(rows: list[CandidateRow], references: list[ReferenceRow], path: Path) -> Path:
    """Fitness over evaluations; the reference loss's runs as a line at their mean and a band
    from their lowest to their highest (MH-NLE, Figure 4)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fitness = [r.fitness if r.status == Status.DONE else None for r in rows]
    stats = running_stats(fitness)
    x = np.arange(1, len(rows) + 1)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    done = [(i, f) for i, f in zip(x, fitness, strict=True) if f is not None]
    if done:
        xs, ys = zip(*done, strict=True)
        ax.scatter(xs, ys, s=8, color="lightgrey", label="candidate")
    ax.plot(x, stats["best"], label="best so far", color="tab:blue")
    ax.plot(x, stats["mean"], label="mean so far", color="tab:orange")
    ax.plot(x, stats["median"], label="median so far", color="tab:green", linestyle="--")
    values = [r.fitness for r in references if r.fitness is not None]
    if values:
        name = references[0].name
        label = f"{name} (reference)" if len(values) == 1 else f"{name} (reference, {len(values)} runs)"
        ax.axhline(float(np.mean(values)), color="black", linestyle=":", label=label)
        if len(values) > 1:
            ax.axhspan(min(values), max(values), color="black", alpha=0.12)
    ax.set_xlabel("evaluations")
    ax.set_ylabel("fitness (validation accuracy)")
    ax.legend(fontsize=8)
    ax.set_title("search progress")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(run: Path, folder: Path, top_k: int = 5, compare: str = "cross_entropy") -> dict[str, Path]:
    """Every file of the evolution report of the search in ``run``, written to ``folder``."""
    from lossevo.analysis import plots
    from lossevo.genome import genome_from_dict
    from lossevo.losses import get_loss
    from lossevo.losses.base import GenomeLoss

    if not (run / Journal.FILENAME).is_file():
        raise LossevoError(f"run={run} holds no journal.sqlite; give a search's run folder")
    folder.mkdir(parents=True, exist_ok=True)
    with Journal(run) as journal:
        rows = sorted(journal.candidates(FINISHED), key=lambda r: (r.finished_at or 0, r.id))
        best = journal.best(top_k)
        # The reference's runs on the search's own surrogate (not the pre-screen's "<name>@prescreen").
        references = [r for r in journal.references(0) if "@" not in r.name]
        verdict = Verdict.load(journal)
    files = {"fitness": plot_fitness(rows, references, folder / "fitness.png")}
    if verdict is not None:
        files.update(write_verdict(verdict, folder))
    table = [
        [
            r.id,
            r.parent_id,
            r.phase,
            r.status.value,
            r.fitness,
            r.stop_reason and r.stop_reason.value,
            r.seconds,
            r.equation,
        ]
        for r in rows
    ]
    files["journal_csv"] = folder / "journal.csv"
    with files["journal_csv"].open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(table)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|---" * len(COLUMNS) + "|"]
    for row in table:
        cells = ["" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v)) for v in row]
        cells[-1] = f"`{cells[-1]}`"
        lines.append("| " + " | ".join(cells) + " |")
    files["journal_md"] = folder / "journal.md"
    files["journal_md"].write_text("\n".join(lines) + "\n")
    tex = [r"\begin{align*}"]
    for rank, r in enumerate(best, start=1):
        tex.append(rf"\text{{\#{rank} (candidate {r.id}, {r.fitness:.4f})}}:\quad & {r.latex} \\")
    tex.append(r"\end{align*}")
    files["equations"] = folder / "equations.tex"
    files["equations"].write_text("\n".join(tex) + "\n")
    drawn: dict[str, Any] = {
        f"#{k} (candidate {r.id})": GenomeLoss(genome_from_dict(r.genome))
        for k, r in enumerate(best, start=1)
    }
    reference_loss = get_loss(compare)
    drawn[compare] = reference_loss
    files["phenotypes"] = plots.plot_phenotypes(drawn, folder / "phenotypes.png")
    files.update(phenotype_files(best, compare, reference_loss, folder / "phenotypes"))
    return files


def phenotype_files(best: list[CandidateRow], name: str, reference: Any, folder: Path) -> dict[str, Path]:
    """One small phenotype image per top candidate against the reference loss (``phenotype_<id>``),
    for the W&B ``top_candidates`` table."""
    from lossevo.analysis import plots
    from lossevo.genome import genome_from_dict
    from lossevo.losses.base import GenomeLoss

    return {
        f"phenotype_{r.id}": plots.plot_phenotypes(
            {f"candidate {r.id}": GenomeLoss(genome_from_dict(r.genome)), name: reference},
            folder / f"{r.id:06d}.png",
        )
        for r in best
    }


TOP_COLUMNS = ["rank", "id", "status", "fitness", "equation", "phenotype"]


def track_top_candidates(tracker: Any, best: list[CandidateRow], files: dict[str, Path]) -> None:
    """The ``top_candidates`` table (equations and phenotype images) on W&B."""
    rows = [
        [k, r.id, r.status.value, r.fitness, r.equation, files.get(f"phenotype_{r.id}")]
        for k, r in enumerate(best, start=1)
    ]
    tracker.table("top_candidates", TOP_COLUMNS, rows)


def summary_line(run: Path) -> str:
    """Candidates done and failed, and the search's pick: the verdict's best_1 with its test
    accuracy where there is a verdict, else the best rung-0 result (validation data)."""
    with Journal(run) as journal:
        done, failed = journal.count(Status.DONE), journal.count(Status.FAILED)
        best = journal.best(1)
        verdict = Verdict.load(journal)
    head = f"{done + failed} candidates ({failed} failed)"
    picks = [r for r in verdict.finalists() if r.finished] if verdict is not None else []
    if picks:
        r = picks[0]
        spread = f" ± {r.test_std:.4f}" if r.finished > 1 else ""
        return (
            f"{head}, the verdict's pick {r.loss} (candidate {r.candidate}): test {r.test_mean:.4f}{spread} "
            f"over {r.finished} runs: {r.equation}"
        )
    return head + (
        f", best rung-0 validation fitness {best[0].fitness:.4f}: {best[0].equation}" if best else ""
    )


def report_search(cfg: DictConfig, folder: Path) -> list[Path]:
    """``report.py run=<search>``: the files of :func:`write_report` and the same on W&B."""
    from lossevo.tracking.tracker import Tracker, group_for

    run = Path(str(cfg.run))
    top_k = int(cfg.top_k)
    compare = (cfg.get("compare") or ["cross_entropy"])[0]
    files = write_report(run, folder, top_k, str(compare))
    tracker = Tracker(
        cfg.get("logger"), folder, group=group_for(run), job_type="report", name=f"report-{run.name}"
    )
    try:
        with Journal(run) as journal:
            best = journal.best(top_k)
            verdict = Verdict.load(journal)
        tracker.images({"fitness": files["fitness"], "phenotypes": files["phenotypes"]})
        track_top_candidates(tracker, best, files)
        if verdict is not None:
            track_verdict(verdict, tracker)
    finally:
        tracker.finish()
    return list(files.values())
