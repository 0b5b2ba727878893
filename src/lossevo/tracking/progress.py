"""What a search shows while it runs: evaluations done out of the budget, the best, mean and median
fitness so far, and the reference loss's fitness on the same surrogate; then the verdict's
trainings done out of those planned, with the time left estimated from the ones so far.

On a terminal this is a live rich progress display under the log lines (one bar for the search,
one for the verdict); elsewhere (CI, a log file, a batch job) each finished candidate and each
verdict training logs one line carrying the same figures.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

log = logging.getLogger("lossevo")


class SearchProgress:
    """Tracks fitness statistics of a search and shows them (see the module docstring)."""

    def __init__(self, budget: int, console: Console | None = None, live: bool | None = None) -> None:
        self.budget = budget
        self.console = console or Console(stderr=False)
        self.live = self.console.is_terminal if live is None else live
        self.fitnesses: list[float] = []
        self.failed = 0
        self.reference: float | None = None
        self._progress: Progress | None = None
        self._task: Any = None
        # The verdict: trainings planned, done (journalled before this process: not timed), timed.
        self.verdict_total = 0
        self.verdict_done = 0
        self._verdict_task: Any = None
        self._verdict_started = 0.0
        self._verdict_timed = 0

    # ------------------------------------------------------------------ figures
    def add(self, fitness: float | None) -> None:
        if fitness is None:
            self.failed += 1
        else:
            self.fitnesses.append(float(fitness))
        self._refresh()

    @property
    def done(self) -> int:
        return len(self.fitnesses) + self.failed

    def stats(self) -> dict[str, float | None]:
        f = self.fitnesses
        return {
            "best": max(f) if f else None,
            "mean": statistics.fmean(f) if f else None,
            "median": statistics.median(f) if f else None,
            "reference": self.reference,
        }

    def line(self) -> str:
        s = self.stats()
        return (
            f"{self.done}/{self.budget} evaluated ({self.failed} failed) | best {_fmt(s['best'])} "
            f"mean {_fmt(s['mean'])} median {_fmt(s['median'])} | reference {_fmt(s['reference'])}"
        )

    def start_verdict(self, total: int, done: int = 0) -> None:
        """The verdict begins: ``total`` trainings, ``done`` of them already in the journal."""
        self.verdict_total, self.verdict_done = total, done
        self._verdict_started, self._verdict_timed = time.monotonic(), 0
        if self._progress is not None:
            self._verdict_task = self._progress.add_task("verdict", total=total, completed=done, figures="")

    def verdict_trained(self, name: str) -> str:
        """One verdict training finished; returns the line that says where the verdict stands."""
        self.verdict_done += 1
        self._verdict_timed += 1
        if self._progress is not None and self._verdict_task is not None:
            self._progress.update(self._verdict_task, completed=self.verdict_done, figures=name)
        return self.verdict_line()

    def verdict_reused(self) -> None:
        """One verdict training another search of the sweep trained meanwhile (not timed)."""
        self.verdict_done += 1
        if self._progress is not None and self._verdict_task is not None:
            self._progress.update(self._verdict_task, completed=self.verdict_done)

    def verdict_line(self) -> str:
        left = self.verdict_total - self.verdict_done
        line = f"verdict: {self.verdict_done}/{self.verdict_total} trainings"
        if self._verdict_timed and left > 0:
            per = (time.monotonic() - self._verdict_started) / self._verdict_timed
            line += f", about {_duration(per * left)} left"
        return line

    # ------------------------------------------------------------------ display
    @contextmanager
    def shown(self) -> Iterator[SearchProgress]:
        """Show the live bar while the block runs (log lines keep printing above it)."""
        if not self.live:
            yield self
            return
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[figures]}"),
            console=self.console,
            redirect_stdout=True,
            redirect_stderr=True,
            transient=False,
        )
        with progress:
            # Hydra's console handler holds the real stdout: send its lines through rich's proxy so
            # they scroll above the bar instead of tearing it.
            moved = []
            for handler in logging.getLogger().handlers:
                stream = getattr(handler, "stream", None)
                if isinstance(handler, logging.StreamHandler) and stream in (sys.__stdout__, sys.__stderr__):
                    moved.append((handler, stream))
                    handler.setStream(sys.stdout if stream is sys.__stdout__ else sys.stderr)
            self._progress = progress
            self._task = progress.add_task("search", total=self.budget, completed=self.done, figures="")
            self._refresh()
            try:
                yield self
            finally:
                self._refresh()
                self._progress = None
                for handler, stream in moved:
                    handler.setStream(stream)

    def _refresh(self) -> None:
        if self._progress is None:
            return
        s = self.stats()
        figures = (
            f"best {_fmt(s['best'])}  mean {_fmt(s['mean'])}  median {_fmt(s['median'])}  "
            f"reference {_fmt(s['reference'])}  failed {self.failed}"
        )
        self._progress.update(self._task, completed=self.done, figures=figures)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
