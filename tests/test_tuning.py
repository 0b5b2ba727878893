"""validate.tune: every loss's learning rate and each baseline's coefficient chosen on validation
data before the test runs, and the test runs trained at the chosen point (docs/methods.md §5)."""

from __future__ import annotations

import csv
import shutil
import sqlite3
from pathlib import Path

import pytest

from lossevo.results import Fitness, Status, StopReason
from lossevo.store.journal import Journal
from lossevo.verdict.tuning import Point, TuneGrid, applied, choose, points

GRID = TuneGrid([0.5, 2.0], {"label_smoothing": [0.05, 0.2], "epsilon": [0.5, 2.0]}, runs=2, budget=90)


def test_a_grid_is_the_lr_multipliers_times_a_baselines_own_coefficient_with_its_own_setting_first() -> None:
    ls = points({"name": "cross_entropy", "label_smoothing": 0.1}, True, GRID)
    assert ls[0] == Point(1.0, (("label_smoothing", 0.1),)), "the loss's own setting first"
    assert len(ls) == 3 * 3 and len(set(ls)) == 9  # lr x0.5, x1, x2 times 0.05, 0.1, 0.2
    assert {p.lr_scale for p in ls} == {0.5, 1.0, 2.0}
    # Plain cross-entropy (label smoothing 0) and a finalist tune the learning rate only.
    assert [
        p.coefficients for p in points({"name": "cross_entropy", "label_smoothing": 0.0}, True, GRID)
    ] == [()] * 3
    assert len(points({"label_smoothing": 0.1}, False, GRID)) == 3
    poly = points({"name": "poly1", "epsilon": 1.0, "label_smoothing": 0.0}, True, GRID)
    assert {dict(p.coefficients)["epsilon"] for p in poly} == {0.5, 1.0, 2.0}
    assert poly[4].loss({"name": "poly1", "epsilon": 1.0})["epsilon"] == dict(poly[4].coefficients)["epsilon"]
    assert (
        Point(2.0).overrides(0.002) == ["surrogate.optimizer.lr=0.004"] and Point(1.0).overrides(0.002) == []
    )


def test_the_best_validation_mean_is_chosen_a_failed_point_never_and_ties_keep_the_own_setting(
    tmp_path: Path,
) -> None:
    grid = {"cross_entropy": points({"label_smoothing": 0.0}, True, GRID)}
    own, half, double = grid["cross_entropy"]
    journal = Journal(tmp_path)

    def add(point: Point, run: int, value: float | None) -> None:
        result = (
            Fitness(Status.DONE, value, StopReason.COMPLETED, seconds=1.0)
            if value is not None
            else Fitness.failure(StopReason.NONFINITE, "nan")
        )
        journal.add_tuning("cross_entropy", 90, point.label, run, 7, result)

    add(own, 0, 0.80), add(own, 1, 0.82)
    add(half, 0, 0.90), add(half, 1, None)  # best run, but one failed: never chosen
    add(double, 0, 0.81), add(double, 1, 0.81)  # same mean as the own setting: a tie keeps it
    chosen, results = choose(journal.tunings(90), grid)
    assert chosen["cross_entropy"] == own and applied("cross_entropy", chosen, grid) is None
    assert [r.chosen for r in results] == [True, False, False] and results[1].failed == 1
    add(double, 1, 0.83)
    chosen, _ = choose(journal.tunings(90), grid)
    assert chosen["cross_entropy"] == double and applied("cross_entropy", chosen, grid) == double
    assert choose(journal.tunings(900), grid)[0]["cross_entropy"] == own, "nothing trained: untuned"
    journal.close()


@pytest.mark.slow
def test_a_tuned_verdict_trains_its_grid_on_validation_data_and_tests_each_loss_at_its_best_point(
    tmp_path: Path,
) -> None:
    from .conftest import TINY, run_script, verdict_phase

    search = [
        *TINY,
        "search=random",
        "search.budget=3",
        "surrogate.steps=30",
        "validate.runs=2",
        "validate.tune=true",
        "validate.tune_lr=[0.5,2]",
        "validate.tune_coefficients.label_smoothing=[0.2]",  # epsilon keeps its default grid
    ]
    result = run_script("evolve.py", *search, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "every loss tuned on validation data at 90 steps" in " ".join(result.stdout.split())
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        tuning = db.execute(
            "SELECT loss, point, AVG(fitness), COUNT(*) FROM tuning GROUP BY loss, point"
        ).fetchall()
        tested = dict(db.execute("SELECT loss, point FROM validation WHERE run = 0").fetchall())
    # 3 lr points for the finalist and CE; x2 smoothings (0.1 own, 0.2) for CE_ls; x3 epsilons for Poly-1.
    per_loss = {loss: sum(1 for t in tuning if t[0] == loss) for loss in {t[0] for t in tuning}}
    assert per_loss == {"candidate_1": 3, "cross_entropy": 3, "cross_entropy_ls": 6, "poly1": 9}
    assert all(n == 1 for *_, n in tuning)
    best = {}
    for loss, point, mean, _ in tuning:  # the first best in the grid's order (own setting first)
        if loss not in best or mean > best[loss][1]:
            best[loss] = (point, mean)
    own = {"candidate_1": "lr x1", "cross_entropy": "lr x1"}
    own |= {"cross_entropy_ls": "lr x1, label_smoothing 0.1", "poly1": "lr x1, epsilon 1"}
    for loss, (point, _) in best.items():
        assert tested[loss] == ("" if point == own[loss] else point), loss
    with open(tmp_path / "tuning.csv") as fh:
        listed = list(csv.DictReader(fh))
    assert len(listed) == 21 and {(r["loss"], r["point"]) for r in listed if r["chosen"] == "True"} == {
        (loss, point) for loss, (point, _) in best.items()
    }
    md = (tmp_path / "verdict.md").read_text()
    assert "## Tuning" in md and md.count("**chosen**") == 4 and "| verdict | tuning at 90 steps | 21 |" in md

    # The trainings the plan asks for carry the point: rebuilt from the journal with the run's own
    # composition, with the rows removed from a copy so that every task is planned again.
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(tmp_path / "journal.sqlite", copy / "journal.sqlite")
    journal = Journal(copy)
    phase = verdict_phase(journal, search)
    plan = phase.plan
    assert plan.tune is not None
    phase.chosen, _ = plan.tuned(journal)  # from the journal's tuning rows, then every row removed
    with sqlite3.connect(copy / "journal.sqlite") as db:
        db.execute("DELETE FROM validation")
        db.execute("DELETE FROM tuning")
    grid_tasks = {(t.key.loss, t.key.point): t.configs[0] for t in phase.tuning_tasks()}
    assert len(grid_tasks) == 21 and not any(t.test for t in phase.tuning_tasks()), "tuning is never tested"
    assert grid_tasks[("cross_entropy", "lr x2")]["surrogate"]["optimizer"]["lr"] == pytest.approx(0.004)
    assert grid_tasks[("cross_entropy_ls", "lr x0.5, label_smoothing 0.2")]["loss"]["label_smoothing"] == 0.2
    test_runs = {t.key.loss: t.configs[0] for t in phase.tasks() if t.key.run == 0}
    for loss, (point, _) in best.items():
        scale = float(point.split(",")[0].removeprefix("lr x"))
        assert test_runs[loss]["surrogate"]["optimizer"]["lr"] == pytest.approx(0.002 * scale), loss
    seeds = {t.configs[0]["seed"] for t in phase.tuning_tasks()} & {c["seed"] for c in test_runs.values()}
    assert not seeds, "tuning has seeds of its own"
    journal.close()

    # Tuning off again: the tuned losses' runs are trained again untuned, and the verdict says so.
    off = run_script("evolve.py", *search, "validate.tune=false", f"hydra.run.dir={tmp_path}")
    assert off.returncode == 0, off.stderr[-3000:]
    assert "baselines not tuned (validate.tune=true" in " ".join(off.stdout.split())
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        assert {p for (p,) in db.execute("SELECT point FROM validation")} == {""}


def test_a_grid_read_from_a_journal_changes_only_numbers_a_loss_already_holds() -> None:
    """A plan's grid comes back from the journal as data: a coefficient named like code, or whose
    loss holds no such number, touches nothing, so no ``_target_`` can enter a training config."""
    hostile = TuneGrid([1.0], {"_target_": [1.0], "name": [2.0], "label_smoothing": [0.2]})
    loss = {"_target_": "lossevo.losses.get_loss", "name": "cross_entropy", "label_smoothing": 0.1}
    grid = points(loss, True, hostile)
    assert {k for p in grid for k, _ in p.coefficients} == {"label_smoothing"}
    assert all(p.loss(loss)["_target_"] == loss["_target_"] for p in grid)
