"""What a search shows while it runs: evaluations done out of the budget, the best, mean and median
fitness so far, and the reference loss's fitness on the same surrogate.

On a terminal this is a live rich progress bar under the log lines; elsewhere (CI, a log file,
a batch job) each finished candidate logs one line carrying the same figures.
"""

from __future__ import annotations

import logging
import statistics
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

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

    # ------------------------------------------------------------------ display
    @contextmanager
    def shown(self) -> Iterator[SearchProgress]:
        """Show the live bar while the block runs (log lines keep printing above it)."""
        if not self.live:
            yield self
            return
        progress = Progress(
            TextColumn("[bold]search"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
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


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
