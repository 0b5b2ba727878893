"""Run folders written by an earlier lossevo keep working: a search resumes, its candidates retrain,
its best losses load.

``tests/data/search_b5457cc`` was written by lossevo at commit b5457cc (before the package was
grouped by role, when module paths such as ``lossevo.augment.Pipeline`` sat in every config) with

    python evolve.py dataset=digits surrogate.steps=40 surrogate.val_every=20 surrogate.batch_size=32
        surrogate.precheck.step=null surrogate.early_stop.step=null trainer.accelerator=cpu logger=none
        search.budget=4 search.initial_population=3 "search.fidelity.rungs=[40,80]" validate.runs=2
        validate.top_k=1

and holds its journal (candidates, a promotion, the reference at two rungs, a verdict), the
command line, one candidate's config and the best loss it wrote.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_script

FIXTURE = ROOT / "tests" / "data" / "search_b5457cc"


def _copy(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    return run


def _candidates(run: Path) -> list[tuple]:
    with sqlite3.connect(run / "journal.sqlite") as db:
        return db.execute("SELECT id, genome, status, fitness, seed FROM candidates ORDER BY id").fetchall()


@pytest.mark.slow
def test_a_search_written_by_an_earlier_version_resumes(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    before = _candidates(run)
    assert len(before) == 4 and all(row[2] == "done" for row in before)
    overrides = [
        o
        for o in yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
        if not o.startswith("search.budget=")
    ]
    result = run_script("evolve.py", *overrides, "search.budget=5", f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "other settings" not in result.stderr
    after = _candidates(run)
    assert after[:4] == before  # nothing recorded was trained again or changed
    assert len(after) == 5 and after[4][2] == "done"
    assert "resuming" in result.stderr + result.stdout
    assert (run / "verdict.md").is_file()
    # Its journal was migrated (schema 2 -> 6): the old validation rows had no test accuracy, so the
    # verdict trained them again (same seeds) and every row now has one.
    with sqlite3.connect(run / "journal.sqlite") as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "6"
        rows = db.execute("SELECT loss, run, test_acc FROM validation ORDER BY loss, run").fetchall()
    assert {loss for loss, _, _ in rows} >= {"candidate_1", "cross_entropy"} and all(
        t is not None for *_, t in rows
    )


def test_a_journal_written_by_an_earlier_version_is_migrated_keeping_what_it_holds(tmp_path: Path) -> None:
    from lossevo.store.journal import Journal

    run = _copy(tmp_path)
    with sqlite3.connect(run / "journal.sqlite") as db:
        before = db.execute(
            "SELECT loss, budget, run, seed, status, fitness FROM validation ORDER BY loss, run"
        ).fetchall()
    with Journal(run) as journal:
        rows = journal.validations()
        assert [(r.loss, r.budget, r.run, r.seed, r.status.value, r.fitness) for r in rows] == before
        assert all(r.setting == "" and r.test_acc is None for r in rows) and journal.looks() == []
        assert len(journal.candidates()) == 4


@pytest.mark.slow
def test_a_candidate_config_written_by_an_earlier_version_retrains(tmp_path: Path) -> None:
    run = _copy(tmp_path)
    folder = run / "candidates" / "000001"
    assert "_target_: lossevo.augment.Pipeline" in (folder / "config.yaml").read_text()  # the old paths
    result = run_script(
        "train.py",
        "--config-path",
        str(folder),
        "--config-name",
        "config",
        f"hydra.run.dir={tmp_path / 'retrain'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    retrained = yaml.safe_load((tmp_path / "retrain" / "result.yaml").read_text())
    recorded = _candidates(run)[0][3]
    # The same seeds and recipe: the same accuracy on this machine; another CPU may round differently.
    assert retrained["fitness"] == pytest.approx(recorded, abs=0.05)


def test_a_best_loss_written_by_an_earlier_version_loads() -> None:
    from lossevo.losses import load_loss_file

    loss = load_loss_file(FIXTURE / "conf" / "loss" / "best_1.yaml")
    header = (FIXTURE / "conf" / "loss" / "best_1.yaml").read_text().splitlines()[1]
    assert header == f"# {loss.equation}"


def test_the_verdict_of_an_earlier_version_reads_and_says_it_needs_test_figures(tmp_path: Path) -> None:
    from lossevo.store.journal import Journal
    from lossevo.verdict.rows import Verdict

    run = _copy(tmp_path)
    with Journal(run) as journal:
        verdict = Verdict.load(journal)
    assert verdict is not None and verdict.plan.steps == [80] and verdict.plan.runs == 2
    assert [b.name for b in verdict.plan.baselines] == ["cross_entropy"]
    assert [r.trained_as for r in verdict.finalists()] == ["candidate_1"]
    assert verdict.sentence().startswith("the verdict is incomplete: 0 of 4 validation trainings")
