"""What the entry scripts run: ``evolve.py`` and ``train.py`` call these from ``@hydra.main``.

User errors (:class:`LossevoError`) print one line ``error: ...`` on stderr and exit with status 2;
anything already journalled stays in the journal.
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lossevo.config import build, compose_config, plain
from lossevo.errors import LossevoError
from lossevo.progress import SearchProgress

log = logging.getLogger("lossevo")
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(func: F) -> F:
    """Turn user errors into one message and exit status 2 (no stack trace)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LossevoError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except OmegaConfBaseException as err:
            message = str(err).splitlines()[0]
            print(f"error: bad configuration: {message}", file=sys.stderr)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


def _hydra_context() -> tuple[Path | None, str | None, list[str]]:
    """Run folder, config name and the user's overrides when running inside ``@hydra.main``."""
    if not HydraConfig.initialized():
        return None, None, []
    hc = HydraConfig.get()
    return Path(hc.runtime.output_dir), hc.job.config_name, list(hc.overrides.task)


def _journalled_run(
    cfg: DictConfig, run_dir: str | Path | None, overrides: Sequence[str] | None, entry: str
) -> tuple[Path, Any]:
    """The run folder and per-training config composer of an evolve / correlate / eliminate run.
    Outside a Hydra app the caller names the folder and gives the overrides ``cfg`` was composed
    with."""
    from lossevo.driver import CandidateConfigs

    hydra_dir, config_name, hydra_overrides = _hydra_context()
    folder = Path(run_dir) if run_dir is not None else hydra_dir
    if folder is None:
        raise LossevoError(f"run_{entry} needs a run folder outside a Hydra app (run_dir=...)")
    given = hydra_overrides if overrides is None else list(overrides)
    if entry == "evolve":  # with explicit overrides a search starts from ``cfg`` itself
        return folder, CandidateConfigs(config_name if overrides is None else None, given, cfg)
    return folder, CandidateConfigs(config_name or entry, given, cfg)


# ---------------------------------------------------------------------------- evolve
def run_evolve(
    cfg: DictConfig, run_dir: str | Path | None = None, overrides: Sequence[str] | None = None
) -> Any:
    """Run (or resume) one search; prints the best losses next to the reference loss."""
    from lossevo.driver import Driver

    folder, configs = _journalled_run(cfg, run_dir, overrides, "evolve")
    console = Console(width=max(120, Console().width))
    budget = int(cfg.search.budget)
    progress = SearchProgress(budget, console)

    def report(row: Any, result: Any) -> None:
        fitness = "failed" if row.fitness is None else f"{row.fitness:.4f}"
        parent = f"parent {row.parent_id}" if row.parent_id else row.phase
        reason = "" if row.stop_reason == "completed" else f" [{row.stop_reason}: {row.detail}]"
        log.info(
            "candidate %d (%s) %s in %.1fs%s  %s",
            row.id,
            parent,
            fitness,
            result.seconds,
            reason,
            row.equation,
        )
        log.info("  %s", progress.line())

    driver = Driver(cfg, folder, configs, on_candidate=report, progress=progress)
    already = driver.journal.count(("done", "failed"))
    if already:
        log.info("resuming %s: %d of %d candidates already evaluated", folder, already, budget)
    with progress.shown():
        outcome = driver.run()
    print_outcome(outcome, console)
    return outcome


def print_outcome(outcome: Any, console: Console) -> None:
    table = Table(title=f"Best losses of {outcome.run_dir}")
    table.add_column("rank", justify="right")
    table.add_column("candidate", justify="right")
    table.add_column("fitness (val acc)", justify="right")
    table.add_column("equation", overflow="fold")
    for rank, row in enumerate(outcome.best, start=1):
        table.add_row(str(rank), str(row.id), f"{row.fitness:.4f}", escape(row.equation))
    base = outcome.baseline
    if base is not None:
        fitness = "failed" if base["fitness"] is None else f"{base['fitness']:.4f}"
        table.add_row("ref", escape(base["name"]), fitness, escape(base["equation"]), style="bold")
    console.print(table)
    console.print(
        f"{outcome.evaluated} candidates evaluated ({outcome.failed} failed); "
        f"journal: {outcome.run_dir / 'journal.sqlite'}",
        markup=False,
    )
    if outcome.loss_configs:
        conf = outcome.loss_configs[0].parent.parent
        console.print(f"train the best loss: python train.py --config-dir {conf} loss=best_1", markup=False)


# ---------------------------------------------------------------------------- train
def run_train(cfg: DictConfig, run_dir: str | Path | None = None) -> Any:
    """Train one loss with the configured recipe, ``seeds`` times (seeds ``seed``, ``seed + 1``, ...);
    prints validation and test accuracy and writes ``result.yaml`` and ``results.csv``."""
    import numpy as np

    from lossevo.statistics import write_results
    from lossevo.surrogate import Job, Surrogate
    from lossevo.tracking import Tracker

    hydra_dir, _, _ = _hydra_context()
    folder = Path(run_dir) if run_dir is not None else (hydra_dir or Path("."))
    folder.mkdir(parents=True, exist_ok=True)
    seeds = [int(cfg.seed) + i for i in range(int(cfg.get("seeds", 1) or 1))]
    loss = build(cfg.loss, "loss")
    name = str(cfg.loss.get("name") or type(loss).__name__)
    setting = str(cfg.get("setting") or _setting_label(cfg))
    equation = getattr(loss, "equation", name)
    surrogate = Surrogate(cfg)
    log.info("%s", surrogate.data.summary())
    log.info("loss %s", equation)
    tracker = Tracker(
        cfg.get("logger"),
        folder,
        group="train",
        job_type="train",
        name=f"train-{folder.name}",
        config=plain(cfg),
    )
    results, rows = [], []
    try:
        for seed in seeds:
            root = folder if len(seeds) == 1 else folder / f"seed_{seed}"
            result = surrogate.train(Job(loss, seed, "train"), test=True, root_dir=str(root))
            results.append(result)
            rows.append({"loss": name, "setting": setting, "seed": seed, "status": result.status,
                         "val_acc": result.fitness, "test_acc": result.test_acc, "steps": result.steps,
                         "seconds": round(result.seconds, 3), "equation": equation})  # fmt: skip
            tracker.log({"seed": seed, "val/best_acc": result.fitness, "test/acc": result.test_acc})
            if len(seeds) == 1:
                for step, acc in result.history:
                    tracker.log({"val/acc": acc, "step": step})
            if result.ok:
                print(
                    f"seed {seed}: best validation accuracy {result.fitness:.4f}, test accuracy "
                    f"{result.test_acc:.4f} ({result.steps} steps, {result.seconds:.1f}s)"
                )
            else:
                print(f"seed {seed}: training failed: {result.stop_reason}: {result.detail}")
        done = [r for r in results if r.ok]
        test = np.array([r.test_acc for r in done], dtype=float)
        val = np.array([r.fitness for r in done], dtype=float)
        tracker.summary(
            {
                "best_val_acc": float(val.mean()) if len(val) else None,
                "test_acc": float(test.mean()) if len(test) else None,
                "test_acc_std": float(test.std(ddof=1)) if len(test) > 1 else None,
                "equation": equation,
            }
        )
    finally:
        tracker.finish()
    write_results(folder / "results.csv", rows)
    if len(seeds) == 1:
        (folder / "result.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(results[0].to_dict())))
        return results[0]
    summary = {
        "loss": name,
        "setting": setting,
        "runs": len(seeds),
        "finished": len(done),
        "test_acc_mean": float(test.mean()) if len(test) else None,
        "test_acc_std": float(test.std(ddof=1)) if len(test) > 1 else None,
        "val_acc_mean": float(val.mean()) if len(val) else None,
        "results": [r.to_dict() for r in results],
    }
    (folder / "result.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(summary)))
    if len(test):
        spread = f" ± {test.std(ddof=1):.4f}" if len(test) > 1 else ""
        print(
            f"{name} on {setting}: test accuracy {test.mean():.4f}{spread} "
            f"over {len(test)} of {len(seeds)} runs"
        )
    return results


def _setting_label(cfg: DictConfig) -> str:
    """dataset/model/augment as chosen on the command line (Hydra's choices), for result tables."""
    if HydraConfig.initialized():
        choices = HydraConfig.get().runtime.choices
        parts = [choices.get(g) for g in ("dataset", "model", "augment")]
        if choices.get("experiment"):
            parts.insert(0, choices.get("experiment"))
        return "/".join(str(p) for p in parts if p)
    return "/".join(
        str(cfg[g].get("_target_", g)).rsplit(".", 1)[-1] for g in ("dataset", "model") if g in cfg
    )


# ---------------------------------------------------------------------------- report
def run_report(cfg: DictConfig, run_dir: str | Path | None = None) -> list[Path]:
    """``show=loss``: PNGs and the equation of one loss next to the ``compare`` losses;
    ``show=augmentations``: one batch under each technique."""
    hydra_dir, _, _ = _hydra_context()
    folder = Path(run_dir) if run_dir is not None else (hydra_dir or Path("."))
    show = str(cfg.get("show", "loss"))
    if cfg.get("run") is not None:
        return _report_evolution(cfg, folder)
    if show == "augmentations":
        return _report_augmentations(cfg, folder)
    if show != "loss":
        raise LossevoError(f"report.py show={show!r}: choose loss or augmentations")
    return _report_loss(cfg, folder)


def _report_evolution(cfg: DictConfig, folder: Path) -> list[Path]:
    from lossevo.evolution_report import summary_line, write_report
    from lossevo.journal import Journal
    from lossevo.tracking import Tracker

    run = Path(str(cfg.run))
    compare = (cfg.get("compare") or ["cross_entropy"])[0]
    files = write_report(run, folder, int(cfg.get("top_k", 5)), str(compare))
    tracker = Tracker(cfg.get("logger"), folder, group=run.name or "lossevo", job_type="report",
                      name=f"report-{run.name}")  # fmt: skip
    try:
        with Journal(run) as journal:
            best = journal.best(int(cfg.get("top_k", 5)))
        tracker.images({"fitness": files["fitness"], "phenotypes": files["phenotypes"]})
        rows = [
            [k, r.id, r.status, r.fitness, r.equation, files.get(f"phenotype_{r.id}")]
            for k, r in enumerate(best, start=1)
        ]
        tracker.table("top_candidates", ["rank", "id", "status", "fitness", "equation", "phenotype"], rows)
    finally:
        tracker.finish()
    print(summary_line(run))
    for path in files.values():
        print(f"wrote {path}")
    return list(files.values())


def _report_augmentations(cfg: DictConfig, folder: Path) -> list[Path]:
    from lossevo import plots
    from lossevo.augment import AugmentRNG

    data = build(cfg.dataset, "dataset")
    count = int(cfg.get("images", 8))
    images = data.train_x[:count].float() / 255
    labels = data.train_y[:count]
    columns = {"original": images}
    for technique in cfg.get("techniques") or []:
        composed = compose_config("evolve", [f"augment={technique}"])
        composed.dataset = cfg.dataset  # the augment node reads the dataset's padding and flip
        pipeline = build(composed.augment, "augment", num_classes=data.num_classes)
        columns[str(technique)], _ = pipeline(
            images.clone(), labels.clone(), AugmentRNG(int(cfg.get("seed", 0)))
        )
    path = plots.plot_augmentations(columns, folder / "augmentations.png")
    print(f"wrote {path}")
    return [path]


def _report_loss(cfg: DictConfig, folder: Path) -> list[Path]:
    from lossevo import plots
    from lossevo.losses import get_loss
    from lossevo.tracking import Tracker

    loss = build(cfg.loss, "loss")
    name = str(cfg.loss.get("name") or getattr(loss, "name", "loss"))
    drawn = {name: loss}
    for other in cfg.get("compare") or []:
        if other != name:
            drawn[str(other)] = get_loss(str(other))
    paths = [
        plots.plot_phenotypes(drawn, folder / "phenotype.png"),
        plots.plot_gradients(drawn, folder / "gradient.png"),
        plots.plot_surface(name, loss, folder / "surface.png"),
    ]
    text = describe_loss(name, loss)
    (folder / "equation.md").write_text(text)
    print(text)
    tracker = Tracker(cfg.get("logger"), folder, group="report", job_type="report", name=f"report-{name}")
    try:
        tracker.images({p.stem: p for p in paths})
        tracker.summary({"loss": name, "equation": getattr(loss, "equation", name)})
    finally:
        tracker.finish()
    for path in paths:
        print(f"wrote {path}")
    return paths


def describe_loss(name: str, loss: Any) -> str:
    """The equation of a loss (and its LaTeX, key and source when it is a genome), as Markdown."""
    lines = [f"# {name}", "", f"    {getattr(loss, 'equation', type(loss).__name__)}", ""]
    genome = getattr(loss, "genome", None)
    if genome is not None:
        lines += [
            f"$${genome.latex()}$$",
            "",
            f"space: {genome.space}, sign: {genome.sign:+d}, key: {genome.key()}",
            "",
        ]
        source = getattr(genome, "source", None)
        if source is not None:
            lines += ["```python", source(signed=True).rstrip(), "```", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------- correlate
def run_correlate(
    cfg: DictConfig, run_dir: str | Path | None = None, overrides: Sequence[str] | None = None
) -> dict[str, Path]:
    """Train a study (resumable) and write its rank-correlation analysis; returns the files."""
    import csv

    import numpy as np

    from lossevo import rank_correlation as rc
    from lossevo.study import Study
    from lossevo.tracking import Tracker

    folder, configs = _journalled_run(cfg, run_dir, overrides, "correlate")
    study = Study(cfg, folder, configs)
    if cfg.get("target") is not None and str(cfg.target) not in study.settings:
        raise LossevoError(f"target={cfg.target} is not one of the settings ({', '.join(study.settings)})")
    console = Console(width=max(120, Console().width))
    progress = SearchProgress(len(study.losses) * len(study.settings) * study.runs, console)
    with progress.shown():
        study.run(progress)
    acc, names, cost = study.matrix()
    k = int(cfg.get("top_k", 10))
    full, top = rc.kendall_matrix(acc), rc.kendall_matrix(acc, k)
    labels = rc.cluster_losses(acc, int(cfg.get("clusters", 3)))
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
        threshold = float(cfg.get("threshold", 0.5))
        recommendation = rc.calibrate(acc, names, cost, str(cfg.target), threshold)
        lines += [
            f"## Surrogate calibration against `{cfg.target}` (τ ≥ {threshold})",
            "",
            "| surrogate | s / training | τ vs target | clears |",
            "|---|---|---|---|",
        ]
        for name, seconds, tau, clears in recommendation.rows:
            lines.append(f"| {name} | {seconds:.1f} | {rc.tau_cell(tau)} | {'yes' if clears else 'no'} |")
        verdict = (
            f"**Recommended surrogate: {recommendation.setting}**"
            if recommendation.setting
            else "**No cheaper surrogate reaches the threshold.**"
        )
        lines += ["", verdict, ""]
    lines += ["![Kendall tau](kendall.png)", "", "![Scatter](scatter.png)", ""]
    files["report"] = folder / "correlation.md"
    files["report"].write_text("\n".join(lines))

    tracker = Tracker(cfg.get("logger"), folder, group=folder.name or "lossevo", job_type="correlate",
                      name=f"correlate-{folder.name}", config=plain(cfg))  # fmt: skip
    tracker.table("accuracy", ["loss_id", "name", "cluster", *names, "equation"],
                  [[s.id, s.name, int(c), *[None if np.isnan(v) else float(v) for v in row], s.equation]
                   for s, row, c in zip(study.losses, acc, labels, strict=True)])  # fmt: skip
    tracker.table("kendall", ["setting_a", "setting_b", "tau", "n", f"tau_top{k}", f"n_top{k}"],
                  [[names[i], names[j], full[i][j].tau, full[i][j].n, top[i][j].tau, top[i][j].n]
                   for i in range(len(names)) for j in range(i + 1, len(names))])  # fmt: skip
    tracker.images({"kendall": files["heatmap"], "scatter": files["scatter"]})
    if recommendation is not None:
        tracker.summary({"recommended_surrogate": recommendation.setting})
    tracker.finish()
    study.journal.close()
    console.print(table, markup=False)
    if recommendation is not None:
        console.print(f"recommended surrogate: {recommendation.setting}", markup=False)
    console.print(f"report: {files['report']}", markup=False)
    return files


# ---------------------------------------------------------------------------- eliminate
def run_eliminate(
    cfg: DictConfig, run_dir: str | Path | None = None, overrides: Sequence[str] | None = None
) -> list[Any]:
    """Run (or resume) an elimination; writes elimination.csv / .md; returns every stage's result."""
    import csv

    import numpy as np

    from lossevo.elimination import Elimination, parse_stages
    from lossevo.study import Study
    from lossevo.tracking import Tracker

    folder, configs = _journalled_run(cfg, run_dir, overrides, "eliminate")
    stages = parse_stages(cfg.get("stages"))
    study = Study(cfg, folder, configs, settings={s.name: s.overrides for s in stages})
    console = Console(width=max(120, Console().width))
    total, entrants = 0, len(study.losses)
    for stage in stages:
        total += entrants * stage.runs
        entrants = min(entrants, stage.keep or entrants)
    progress = SearchProgress(total, console)
    with progress.shown():
        results = Elimination(study, stages, bool(cfg.get("average_previous", False))).run(progress)

    names = [r.stage.name for r in results]
    reached = {s.id: 0 for s in study.losses}
    for i, r in enumerate(results, start=1):
        for s in r.entrants:
            reached[s.id] = i
    final = results[-1]
    rank = {s.id: i for i, s in enumerate(final.survivors, start=1)}
    order = sorted(study.losses, key=lambda s: (-reached[s.id], rank.get(s.id, 10**9), s.id))
    rows = []
    for s in order:
        scores = [r.scores.get(s.id) for r in results]
        cells = ["" if v is None or np.isnan(v) else f"{v:.4f}" for v in scores]
        last = names[reached[s.id] - 1] if reached[s.id] else "-"
        rows.append([s.id, s.name, last, rank.get(s.id), *cells, s.equation])
    header = ["loss_id", "name", "last_stage", "final_rank", *names, "equation"]
    path = folder / "elimination.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    lines = [
        f"# Elimination of {len(study.losses)} losses",
        "",
        "| stage | overrides | runs | entrants | kept |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.stage.name} | `{' '.join(r.stage.overrides)}` | {r.stage.runs} | "
                     f"{len(r.entrants)} | {len(r.survivors)} |")  # fmt: skip
    lines += ["", "| rank | loss | " + " | ".join(names) + " | equation |", "|---" * (len(names) + 3) + "|"]
    for row in rows:
        if row[3] is not None:
            lines.append(f"| {row[3]} | {row[1]} | " + " | ".join(row[4:-1]) + f" | `{row[-1]}` |")
    report = folder / "elimination.md"
    report.write_text("\n".join(lines) + "\n")
    tracker = Tracker(cfg.get("logger"), folder, group=folder.name or "lossevo", job_type="eliminate",
                      name=f"eliminate-{folder.name}", config=plain(cfg))  # fmt: skip
    tracker.table("elimination", header, [[*r[:4], *r[4:-1], r[-1]] for r in rows])
    for r in results:  # one ranking per stage, in the order it was decided
        ranked = sorted(r.entrants, key=lambda s: (-np.nan_to_num(r.scores[s.id], nan=-1.0), s.id))
        kept = {s.id for s in r.survivors}
        tracker.table(f"stage/{r.stage.name}", ["rank", "loss", "score", "kept", "equation"],
                      [[i, s.name, r.scores[s.id], s.id in kept, s.equation]
                       for i, s in enumerate(ranked, start=1)])  # fmt: skip
    tracker.finish()
    study.journal.close()
    table = Table(title=f"Survivors of {final.stage.name}")
    for column in ("rank", "loss", "score", "equation"):
        table.add_column(column)
    for i, s in enumerate(final.survivors, start=1):
        table.add_row(str(i), s.name, f"{final.scores[s.id]:.4f}", escape(s.equation))
    console.print(table)
    console.print(f"report: {report}", markup=False)
    return results
