"""The SQLite journal: candidates, strategy state, atomic writes, reopening."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lossevo.errors import LossevoError
from lossevo.journal import Journal
from lossevo.losses.published import GENOMES


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


def finish(journal: Journal, candidate_id: int, fitness: float | None, state: dict | None = None) -> None:
    journal.finish_candidate(
        candidate_id,
        status="done" if fitness is not None else "failed",
        fitness=fitness,
        stop_reason="completed" if fitness is not None else "nonfinite",
        detail="",
        steps=10,
        train_acc=0.5,
        history=[(10, fitness or 0.0)],
        seconds=1.5,
        state=state,
    )


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
        j.add_baseline(
            "cross_entropy",
            "L = ...",
            5,
            {
                "status": "done",
                "fitness": 0.75,
                "stop_reason": "completed",
                "detail": "",
                "steps": 10,
                "seconds": 1.0,
            },
        )
    with Journal(tmp_path / "journal.sqlite") as j:
        assert j.candidate(1).fitness == 0.7 and j.strategy_state() == {"rng": [1, 2, 3]}
        assert j.get_meta("identity") == {"seed": 0}
        assert j.baseline("cross_entropy")["fitness"] == 0.75 and j.baseline("mse") is None


def test_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LossevoError, match="not a readable lossevo journal"):
        Journal(path)
