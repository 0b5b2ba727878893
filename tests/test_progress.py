"""The search's progress figures and live display."""

from __future__ import annotations

import io
import logging

import pytest
from rich.console import Console

from lossevo.tracking.progress import SearchProgress


def test_figures_count_failures_and_ignore_them_in_statistics() -> None:
    progress = SearchProgress(budget=5, console=Console(file=io.StringIO()), live=False)
    progress.reference = 0.8
    for fitness in (0.5, None, 0.9, 0.7):
        progress.add(fitness)
    assert progress.done == 4 and progress.failed == 1
    assert progress.stats() == pytest.approx({"best": 0.9, "mean": 0.7, "median": 0.7, "reference": 0.8})
    assert progress.line() == (
        "4/5 evaluated (1 failed) | best 0.9000 mean 0.7000 median 0.7000 | reference 0.8000"
    )


def test_live_bar_keeps_log_lines_and_restores_handlers() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    progress = SearchProgress(budget=3, console=console)
    assert progress.live
    root = logging.getLogger()
    with progress.shown():
        progress.reference = 0.5
        progress.add(0.25)
        progress.add(0.75)
        print("a log line")
    text = out.getvalue()
    assert "a log line" in text and "2/3" in text and "best 0.7500" in text and "reference 0.5000" in text
    assert all(getattr(h, "stream", None) is not out for h in root.handlers)


def test_the_verdict_shows_trainings_done_of_planned_with_the_time_left(monkeypatch) -> None:
    import lossevo.tracking.progress as module

    clock = iter([100.0, 130.0, 160.0])  # start, then two trainings of 30 s each
    monkeypatch.setattr(module.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    progress = SearchProgress(budget=3, console=Console(file=out, force_terminal=True, width=160))
    with progress.shown():
        progress.start_verdict(total=10, done=2)  # two runs were already in the journal
        assert (
            progress.verdict_trained("validation of poly1 (run 1)")
            == "verdict: 3/10 trainings, about 4 min left"
        )
        assert (
            progress.verdict_trained("validation of poly1 (run 2)")
            == "verdict: 4/10 trainings, about 3 min left"
        )
    assert "verdict" in out.getvalue() and "4/10" in out.getvalue()
