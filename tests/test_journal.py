"""The SQLite journal: candidates, strategy state, atomic writes, reopening."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from lossevo.errors import LossevoError
from lossevo.losses.published import GENOMES
from lossevo.results import Fitness, Status, StopReason
from lossevo.store.journal import Journal


def add(journal: Journal, candidate_id: int, state: dict | None = None) -> int:
    g = GENOMES["bessel"]
    return journal.add_candidate(
        candidate_id=candidate_id,
        genome=g.to_dict(),
        key=g.key(),
        equation=g.equation(),
        latex=g.latex(),
        seed=100 + candidate_id,
        phase="initial",
        parent_id=None,
        state=state,
    )


def result(fitness: float | None, per_run: list[float] | None = None) -> Fitness:
    if fitness is None:
        return Fitness.failure(StopReason.NONFINITE, "nan", seconds=1.5, steps=10)
    return Fitness(
        Status.DONE,
        fitness,
        StopReason.COMPLETED,
        "",
        steps=10,
        seconds=1.5,
        train_acc=0.5,
        history=[(10, fitness)],
        per_run=per_run,
    )


def finish(journal: Journal, candidate_id: int, fitness: float | None, state: dict | None = None) -> None:
    journal.finish_candidate(candidate_id, result(fitness), state)


def test_candidates_move_through_their_statuses(tmp_path: Path) -> None:
    with Journal(tmp_path) as j:
        add(j, 1, state={"n": 1})
        add(j, 2, state={"n": 2})
        assert j.strategy_state() == {"n": 2}
        j.mark_running(1)
        assert [c.status for c in j.candidates()] == ["running", "pending"]
        assert [c.id for c in j.unfinished()] == [1, 2]
        finish(j, 1, 0.8, state={"n": 3})
        finish(j, 2, None)
        assert j.strategy_state() == {"n": 3}, "no state given: the last one stays"
        row = j.candidate(1)
        assert (row.status, row.fitness, row.attempts, row.seed) == ("done", 0.8, 1, 101)
        assert row.genome == GENOMES["bessel"].to_dict() and row.history == [[10, 0.8]]
        assert j.count() == 2 and j.count("failed") == 1 and j.unfinished() == []
        assert [c.id for c in j.best(5)] == [1]


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    with Journal(tmp_path) as j:
        add(j, 1, state={"n": 1})
        with pytest.raises(RuntimeError), j.transaction() as db:
            db.execute("UPDATE candidates SET status = 'done', fitness = 0.9 WHERE id = 1")
            raise RuntimeError("killed half way")
        assert j.candidate(1).status == "pending" and j.candidate(1).fitness is None
        with pytest.raises(sqlite3.IntegrityError):  # a duplicate id is refused and leaves the state alone
            add(j, 1, state={"n": 99})
        assert j.strategy_state() == {"n": 1}


def test_reopening_keeps_everything(tmp_path: Path) -> None:
    with Journal(tmp_path) as j:
        add(j, 1)
        finish(j, 1, 0.7, state={"rng": [1, 2, 3]})
        j.set_meta("identity", {"seed": 0})
        j.add_reference("cross_entropy", 0, "L = ...", 5, result(0.75))
    with Journal(tmp_path / "journal.sqlite") as j:
        assert j.candidate(1).fitness == 0.7 and j.strategy_state() == {"rng": [1, 2, 3]}
        assert j.get_meta("identity") == {"seed": 0}
        assert j.reference("cross_entropy").fitness == 0.75 and j.reference("mse") is None


def test_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LossevoError, match="not a readable lossevo journal"):
        Journal(path)


def test_rungs_promotions_and_validation_rows(tmp_path: Path) -> None:
    with Journal(tmp_path) as j:
        add(j, 1)
        add(j, 2)
        finish(j, 1, 0.8)
        finish(j, 2, None)
        assert [(r.candidate_id, r.rung, r.status, r.fitness) for r in j.rungs(0)] == [
            (1, 0, Status.DONE, 0.8),
            (2, 0, Status.FAILED, None),
        ]
        j.promote(1, 1)
        assert [(r.candidate_id, r.rung) for r in j.unfinished_promotions()] == [(1, 1)]
        j.mark_running(1, rung=1)
        assert j.candidate(1).attempts == 0 and j.rungs(1)[0].attempts == 1, "a promotion is not a retry"
        j.finish_candidate(1, result(0.9, per_run=[0.88, 0.92]), state={"n": 5}, rung=1)
        row = j.rungs(1)[0]
        assert (row.status, row.mean, row.runs) == (Status.DONE, pytest.approx(0.9), [0.88, 0.92])
        assert row.std == pytest.approx(0.0282843, abs=1e-6) and j.candidate(1).fitness == 0.8
        assert j.unfinished_promotions() == [] and j.strategy_state() == {"n": 5}
        with pytest.raises(sqlite3.IntegrityError):
            j.promote(1, 1)  # promoted once
        j.add_validation("candidate_1", 1, 900, 0, 77, result(0.91))
        j.add_validation("cross_entropy", None, 900, 0, 77, result(0.9))
        j.add_validation("cross_entropy", None, 3600, 0, 77, result(0.95))  # a verdict at another budget
        assert [(v.loss, v.seed, v.fitness) for v in j.validations(900)] == [
            ("candidate_1", 77, 0.91),
            ("cross_entropy", 77, 0.9),
        ]


def test_a_second_process_is_refused_while_the_first_holds_the_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    first = Journal(tmp_path)
    first.lock()
    code = (
        "import sys; from lossevo.store.journal import Journal; from lossevo.errors import LossevoError\n"
        "j = Journal(sys.argv[1])\n"
        "try:\n    j.lock()\nexcept LossevoError as e:\n    print(e); sys.exit(3)\n"
    )
    refused = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert refused.returncode == 3 and f"in use by process {os.getpid()}" in refused.stdout
    first.close()  # released (as when the process dies): the next one may run
    again = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert again.returncode == 0, again.stdout


def test_a_journal_of_another_schema_is_refused(tmp_path: Path) -> None:
    """Schema 2 (lossevo 0.1) is migrated (tests/test_old_runs.py); older or newer ones are refused."""
    for version in (1, 7):
        with Journal(tmp_path / str(version)) as j:
            j.set_meta("schema_version", version)
        with pytest.raises(LossevoError, match=f"schema {version}; this lossevo reads schema 6"):
            Journal(tmp_path / str(version))
