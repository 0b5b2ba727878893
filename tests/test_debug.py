"""The debug config group (lightning-hydra-template's manner): debug=fast runs the whole pipeline
small, debug=limit small budgets everywhere, debug=profile a profiler's table in the run folder."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pytest

from lossevo.config import compose_config

from .conftest import run_script

pytestmark = pytest.mark.slow


def test_debug_fast_runs_a_search_and_its_verdict_small(tmp_path: Path) -> None:
    result = run_script(
        "evolve.py", "dataset=digits", "trainer.accelerator=cpu", "debug=fast", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        candidates = db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]
        runs = db.execute("SELECT DISTINCT run FROM validation").fetchall()
        steps = db.execute("SELECT DISTINCT steps FROM rungs WHERE rung = 0").fetchall()
    assert candidates == 2 and len(runs) == 2 and steps == [(30,)]
    assert (tmp_path / "verdict.md").is_file() and not (tmp_path / "wandb").exists()
    # The leads' intervals with the test images' sampling (every training recorded its hits).
    rows = list(csv.DictReader((tmp_path / "comparisons.csv").open()))
    assert rows and all(
        float(r["lower_images"]) <= float(r["difference"]) <= float(r["upper_images"]) for r in rows
    )
    assert "The test set is a sample too" in (tmp_path / "verdict.md").read_text()
    # The progress goes on through the verdict: 4 losses x 2 runs, each training counted.
    out = result.stderr + result.stdout
    assert "verdict: 8/8 trainings" in out
    if "no finalist beats" in out:  # two runs: an exact test could never reach 0.05, and it says so
        assert "an exact sign-flip test cannot go below p = 0.25" in out


def test_debug_options_keep_what_the_user_chose() -> None:
    cfg = compose_config("evolve", ["debug=limit", "dataset=digits", "search=random"])
    assert cfg.search.budget == 6 and cfg.surrogate.steps == 100 and cfg.validate.runs == 3
    assert cfg.dataset._target_ == "lossevo.data.digits" and cfg.search._target_.endswith("RandomSearch")
    assert compose_config("evolve", ["debug=fast", "search.budget=3"]).search.budget == 3


def test_debug_profile_writes_the_profilers_table_to_the_run_folder(tmp_path: Path) -> None:
    result = run_script(
        "train.py",
        "dataset=digits",
        "trainer.accelerator=cpu",
        "surrogate.steps=20",
        "surrogate.val_every=10",
        "logger=none",
        "debug=profile",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = tmp_path / "fit-profile.txt"  # Lightning names it after the stage
    assert "run_training_batch" in report.read_text() and "training_step" in report.read_text()
