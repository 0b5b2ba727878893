"""What the entry scripts run: each function composes what it needs, calls the module of its
concept, and prints. ``evolve.py``, ``train.py``, ``correlate.py``, ``eliminate.py`` and
``report.py`` call these from ``@hydra.main``; tests and notebooks call them with a composed config,
a run folder and the overrides it was composed with.

User errors (:class:`LossevoError`) print one line ``error: ...`` on stderr and exit with status 2;
anything already journalled stays in the journal.
"""

from __future__ import annotations

import errno
import functools
import logging
import shlex
import signal
import sqlite3
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lossevo.api import (
    check_trained,
    hydra_context,
    journalled_run,
    open_search,
    run_folder,
    search_of,
    train_seeds,
)
from lossevo.config.run_folder import restore_previous_command
from lossevo.errors import LossevoError
from lossevo.results import StopReason
from lossevo.store.database import storage_problem
from lossevo.tracking.progress import SearchProgress

if TYPE_CHECKING:
    from lossevo.search.outputs import SearchOutcome

log = logging.getLogger("lossevo")
P = ParamSpec("P")
R = TypeVar("R")
_STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def user_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn user errors into one message and exit status 2 (no stack trace)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        logging.raiseExceptions = False  # a log file on a full disk must not print tracebacks
        interrupted = _note_interrupts()
        try:
            return func(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit) as err:
            # Lightning turns Ctrl-C into exit(1) after its own shutdown: an exit after SIGINT is one too
            if not (isinstance(err, KeyboardInterrupt) or interrupted):
                raise
            print(f"error: interrupted: {_what_is_kept()}", file=sys.stderr)
            sys.exit(130)  # 128 + SIGINT, as shells expect
        except LossevoError as err:
            restore_previous_command()  # a refused resume leaves the folder's command line as it was
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)
        except OmegaConfBaseException as err:
            message = str(err).splitlines()[0]
            print(f"error: bad configuration: {message}", file=sys.stderr)
            sys.exit(2)
        except (sqlite3.OperationalError, OSError) as err:
            # A full disk or a read-only folder: nothing recorded is lost (every write is a
            # transaction), so the same command resumes once the disk can be written again.
            if isinstance(err, OSError) and err.errno not in _STORAGE_ERRNOS:
                raise
            where = getattr(err, "filename", None) or "the run folder"
            print(f"error: {storage_problem(Path(where), err)}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def _note_interrupts() -> list[bool]:
    """A list that becomes non-empty when SIGINT arrives (which still raises KeyboardInterrupt)."""
    seen: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        return seen

    def on_sigint(signum: int, frame: Any) -> None:
        seen.append(True)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, on_sigint)
    return seen


def _what_is_kept() -> str:
    folder, command, _ = hydra_context()
    folder = folder or Path(".")
    if command == "report":
        return "the report was not finished; run the same command again"
    if command == "train":
        return f"the trainings that finished are in {folder / 'results.csv'}; the rest were not run"
    return (
        f"everything that finished is kept in {folder / 'journal.sqlite'}; the same command resumes "
        "there and trains only what is missing"
    )


def _console() -> Console:
    return Console(width=max(120, Console().width))


# ---------------------------------------------------------------------------- evolve
def run_evolve(
    cfg: DictConfig, run_dir: str | Path | None = None, overrides: Sequence[str] | None = None
) -> Any:
    """Run (or resume) one search and its verdict, with a progress bar; prints the validated losses
    next to the reference."""
    console = _console()
    progress = SearchProgress(int(cfg.search.budget), console)

    def report(row: Any, result: Any, rung: int) -> None:
        fitness = "failed" if result.fitness is None else f"{result.fitness:.4f}"
        where = f"rung {rung}" if rung else (f"parent {row.parent_id}" if row.parent_id else row.phase)
        done = result.stop_reason == StopReason.COMPLETED
        reason = "" if done else f" [{result.stop_reason}: {result.detail}]"
        log.info(
            "candidate %d (%s) %s in %.1fs%s  %s",
            row.id,
            where,
            fitness,
            result.seconds,
            reason,
            row.equation,
        )
        if not rung:
            log.info("  %s", progress.line())

    driver = open_search(cfg, run_dir, overrides, on_result=report, progress=progress)
    with progress.shown():
        outcome = driver.run()
    lr = OmegaConf.select(cfg, "surrogate.optimizer.lr", default=None)
    print_outcome(outcome, console, driver.composer.overrides, None if lr is None else float(lr))
    return outcome


def print_outcome(
    outcome: SearchOutcome, console: Console, overrides: Sequence[str] = (), lr: float | None = None
) -> None:
    from lossevo.verdict.sentence import resolution

    verdict = outcome.verdict
    title = (
        f"Validated losses of {outcome.run_dir}"
        if verdict is not None
        else f"Best losses of {outcome.run_dir}"
    )
    table = Table(title=title)
    for column in ("rank", "candidate", "search result (rung)"):
        table.add_column(column, justify="right")
    if verdict is not None:
        where = f"{verdict.plan.runs} runs, {verdict.headline.label}"
        table.add_column(f"test ({where})", justify="right")
        table.add_column("validation", justify="right")
        table.add_column("p, every baseline", justify="right")
    table.add_column("equation", overflow="fold")
    validated = {r.candidate: r for r in verdict.finalists() if r.candidate is not None} if verdict else {}
    for rank, (row, finalist) in enumerate(zip(outcome.best, outcome.finalists, strict=True), start=1):
        cells = [str(rank), str(row.id), f"{finalist.rung_fitness:.4f} ({finalist.rung})"]
        if verdict is not None:
            v = validated.get(row.id)
            p = None if v is None else v.p_every_baseline
            cells += (
                ["-", "-", "-"]
                if v is None
                else [
                    _mean_std(v.test_mean, v.test_std),
                    _mean_std(v.val_mean, v.val_std),
                    "-" if p is None or p != p else f"{p:.3g}",
                ]
            )
        table.add_row(*cells, escape(row.equation))
    if verdict is not None:
        for b in verdict.baselines():
            cells = [
                "baseline",
                escape(b.loss),
                "",
                _mean_std(b.test_mean, b.test_std),
                _mean_std(b.val_mean, b.val_std),
                "",
            ]
            table.add_row(*cells, escape(b.equation), style="bold")
    else:
        ref = outcome.top_reference
        if ref is not None:
            shown = "failed" if ref.fitness is None else f"{ref.fitness:.4f} ({ref.rung})"
            table.add_row("ref", escape(ref.name), shown, escape(ref.equation), style="bold")
    console.print(table)
    promoted = f", {outcome.promotions} promotions" if outcome.promotions else ""
    console.print(
        f"{outcome.evaluated} candidates evaluated ({outcome.failed} failed{promoted}); "
        f"journal: {outcome.run_dir / 'journal.sqlite'}",
        markup=False,
    )
    if verdict is not None and outcome.files:
        console.print(f"verdict: {verdict.sentence()}", markup=False)
        console.print(resolution(verdict), markup=False)
        console.print(f"written: {outcome.files['verdict']}, {outcome.files['validation']}", markup=False)
    if outcome.loss_configs:
        conf = outcome.loss_configs[0].parent.parent
        setting = " ".join(shlex.quote(o) for o in train_overrides(overrides, outcome, lr))
        hint = f"lossevo train --config-dir {shlex.quote(str(conf))} loss=best_1 {setting}".rstrip()
        console.print(
            f"train the best loss in the setting it was found in: {hint}", markup=False, soft_wrap=True
        )


# Overrides of a search that say how its losses trained: data, augmentation, model, recipe, hardware.
TRAINING_KEYS = ("dataset", "augment", "model", "surrogate", "trainer", "data_seed")


def train_overrides(overrides: Sequence[str], outcome: SearchOutcome, lr: float | None = None) -> list[str]:
    """The search's training setting as train.py overrides: its own data, augmentation, model and
    recipe overrides, at the verdict's headline budget with no early exits, and best_1's tuned
    learning rate (``lr``: the setting's) where the verdict tuned it: as it was validated."""
    from lossevo.verdict.plan import validation_overrides

    kept = [
        o
        for o in overrides
        if o.lstrip("+~").split("=", 1)[0].split(".", 1)[0].split("@", 1)[0] in TRAINING_KEYS
        and not o.lstrip("+~").startswith(("surrogate.population", "trainer.threads"))
    ]
    if outcome.verdict is None:
        return kept
    budget = validation_overrides([], outcome.verdict.headline.steps)
    finalists = outcome.verdict.finalists()
    point = outcome.verdict.tuned.get(finalists[0].trained_as) if finalists else None
    if point is not None:
        budget += point.overrides(lr)
    keys = {o.split("=", 1)[0] for o in budget}
    return [o for o in kept if o.lstrip("+~").split("=", 1)[0] not in keys] + budget


def _mean_std(mean: float, std: float) -> str:
    if mean != mean:  # NaN: no finished run
        return "-"
    return f"{mean:.4f}" + ("" if std != std else f" ± {std:.4f}")


def run_validate(cfg: DictConfig) -> Any:
    """The verdict of an earlier search, in its folder (see :func:`lossevo.api.search_of`)."""
    search_cfg, folder, overrides = search_of(cfg)
    return run_evolve(search_cfg, run_dir=folder, overrides=overrides)


# ---------------------------------------------------------------------------- train
def run_train(cfg: DictConfig, run_dir: str | Path | None = None) -> Any:
    """Train one loss with the configured recipe ``seeds`` times; prints validation and test accuracy."""
    outcome = train_seeds(cfg, run_dir)
    for seed, result in zip(outcome.seeds, outcome.results, strict=True):
        if result.ok:
            print(
                f"seed {seed}: best validation accuracy {result.fitness:.4f}, test accuracy "
                f"{result.test_acc:.4f} ({result.steps} steps, {result.seconds:.1f}s)"
            )
        else:
            print(f"seed {seed}: training failed: {result.stop_reason}: {result.detail}")
    check_trained(outcome)
    test = outcome.test_accuracies()
    if len(outcome.seeds) > 1 and len(test):
        spread = f" ± {test.std(ddof=1):.4f}" if len(test) > 1 else ""
        print(
            f"{outcome.name} on {outcome.setting}: test accuracy {test.mean():.4f}{spread} "
            f"over {len(test)} of {len(outcome.seeds)} runs"
        )
    return outcome


# ---------------------------------------------------------------------------- report
def run_report(cfg: DictConfig, run_dir: str | Path | None = None) -> list[Path]:
    """``run=<search>``: the evolution report; ``show=loss``: PNGs and the equation of one loss next
    to the ``compare`` losses; ``show=augmentations``: one batch under each technique."""
    from lossevo.analysis.evolution_report import report_search, summary_line
    from lossevo.analysis.loss_report import write_augmentation_report, write_loss_report

    folder = run_folder(run_dir)
    show = str(cfg.show)
    if cfg.get("run") is not None:
        paths = report_search(cfg, folder)
        print(summary_line(Path(str(cfg.run))))
    elif show == "augmentations":
        paths = [write_augmentation_report(cfg, folder)]
    elif show == "loss":
        paths, text = write_loss_report(cfg, folder)
        print(text)
    else:
        raise LossevoError(f"report.py show={show!r}: choose loss or augmentations")
    for path in paths:
        print(f"wrote {path}")
    return paths


# ---------------------------------------------------------------------------- correlate
def run_correlate(
    cfg: DictConfig, run_dir: str | Path | None = None, overrides: Sequence[str] | None = None
) -> dict[str, Path]:
    """Train a study (resumable) and write its rank-correlation analysis; returns the files."""
    from lossevo.analysis.correlation_report import write_correlation_report
    from lossevo.analysis.study import Study

    folder, composer = journalled_run(cfg, run_dir, overrides, "correlate")
    study = Study(cfg, folder, composer)
    try:
        if cfg.get("target") is not None and str(cfg.target) not in study.settings:
            raise LossevoError(
                f"target={cfg.target} is not one of the settings ({', '.join(study.settings)})"
            )
        console = _console()
        progress = SearchProgress(len(study.losses) * len(study.settings) * study.runs, console)
        with progress.shown():
            study.run(progress)
        report = write_correlation_report(study, cfg, folder)
    finally:
        study.close()
    console.print(report.table, markup=False)
    if report.recommendation is not None:
        from lossevo.analysis.rank_correlation import recommendation_line

        console.print(f"recommended surrogate: {recommendation_line(report.recommendation)}", markup=False)
    console.print(f"report: {report.files['report']}", markup=False)
    return report.files


# ---------------------------------------------------------------------------- eliminate
def run_eliminate(
    cfg: DictConfig, run_dir: str | Path | None = None, overrides: Sequence[str] | None = None
) -> list[Any]:
    """Run (or resume) an elimination; writes elimination.csv / .md; returns every stage's result."""
    from lossevo.analysis.elimination import Elimination, parse_stages, write_elimination_report
    from lossevo.analysis.study import Study

    folder, composer = journalled_run(cfg, run_dir, overrides, "eliminate")
    stages = parse_stages(cfg.get("stages"))
    study = Study(cfg, folder, composer, settings={s.name: s.overrides for s in stages})
    try:
        console = _console()
        total, entrants = 0, len(study.losses)
        for stage in stages:
            total += entrants * stage.runs
            entrants = min(entrants, stage.keep or entrants)
        progress = SearchProgress(total, console)
        with progress.shown():
            results = Elimination(study, stages, bool(cfg.average_previous)).run(progress)
        report = write_elimination_report(study, results, cfg, folder)
    finally:
        study.close()
    final = results[-1]
    table = Table(title=f"Survivors of {final.stage.name}")
    for column in ("rank", "loss", "score", "equation"):
        table.add_column(column)
    for i, s in enumerate(final.survivors, start=1):
        table.add_row(str(i), s.name, f"{final.scores[s.id]:.4f}", escape(s.equation))
    console.print(table)
    console.print(f"report: {report}", markup=False)
    return results
