"""`report.py run=<search>`: the evolution report of a real (tiny) search, and its W&B run offline."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from lossevo.analysis.evolution_report import running_stats
from lossevo.cli.commands import run_evolve
from lossevo.store.journal import Journal

from .conftest import TINY, compose_config, run_script, script_env


def test_running_statistics_skip_failures() -> None:
    stats = running_stats([None, 0.5, None, 0.9, 0.1])
    assert np.isnan(stats["best"][0]) and list(stats["best"][1:]) == [0.5, 0.5, 0.9, 0.9]
    assert stats["mean"][-1] == pytest.approx(0.5) and stats["median"][-1] == pytest.approx(0.5)


@pytest.mark.slow
def test_report_of_a_search(tmp_path: Path) -> None:
    search = tmp_path / "search"
    overrides = [
        *TINY,
        "search=random",
        "search.budget=4",
        "surrogate.steps=20",
        "driver.reference_runs=3",
        "validate.runs=0",
    ]
    outcome = run_evolve(compose_config("evolve", overrides), run_dir=search, overrides=overrides)
    with Journal(search) as journal:
        names = sorted(r.name for r in journal.references(0))
        seeds = {r.seed for r in journal.references(0)}
    assert names == ["cross_entropy", "cross_entropy#2", "cross_entropy#3"] and len(seeds) == 3
    assert outcome.reference.name == "cross_entropy"  # the first run is the reference
    out = tmp_path / "report"
    result = run_script(
        "report.py",
        f"run={search}",
        "top_k=2",
        "logger=wandb",
        f"hydra.run.dir={out}",
        env=script_env(wandb=True, WANDB_MODE="offline"),
    )
    assert result.returncode == 0, result.stderr
    for name in ("fitness.png", "phenotypes.png", "journal.csv", "journal.md", "equations.tex"):
        assert (out / name).stat().st_size > 100, name
    with open(out / "journal.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 4
    assert r"\begin{align*}" in (out / "equations.tex").read_text()
    assert len(list((out / "phenotypes").glob("*.png"))) == 2
    assert list((out / "wandb").glob("offline-run-*/*.wandb")), "the W&B run is written offline"
    assert "4 candidates" in result.stdout and "best rung-0 validation fitness" in result.stdout  # no verdict
