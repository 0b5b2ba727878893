"""The run's journal: one SQLite database in the run folder, the source of truth of a search.

Every candidate is written when it is asked for (status ``pending``), marked ``running`` when its
evaluation starts, and ``done``/``failed`` with its fitness when it ends; the strategy's state is
written in the same transaction as each of those steps, so a run killed at any moment (SIGKILL
included) resumes from a consistent point: candidates not finished are evaluated again with their
recorded seed, and the strategy continues from the state that matches the journal.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossevo.errors import LossevoError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS candidates (
    id          INTEGER PRIMARY KEY,
    parent_id   INTEGER REFERENCES candidates(id),
    phase       TEXT NOT NULL,
    genome      TEXT NOT NULL,
    key         TEXT NOT NULL,
    equation    TEXT NOT NULL,
    latex       TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    fitness     REAL,
    stop_reason TEXT,
    detail      TEXT,
    steps       INTEGER,
    train_acc   REAL,
    history     TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    seconds     REAL
);
CREATE INDEX IF NOT EXISTS candidates_status ON candidates(status);
CREATE TABLE IF NOT EXISTS baselines (
    name        TEXT PRIMARY KEY,
    equation    TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    status      TEXT NOT NULL,
    fitness     REAL,
    stop_reason TEXT,
    detail      TEXT,
    steps       INTEGER,
    seconds     REAL,
    finished_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS strategy_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    state      TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""

FINISHED = ("done", "failed")


@dataclass
class CandidateRow:
    id: int
    parent_id: int | None
    phase: str
    genome: dict[str, Any]
    key: str
    equation: str
    latex: str
    seed: int
    status: str
    fitness: float | None
    stop_reason: str | None
    detail: str | None
    steps: int | None
    train_acc: float | None
    history: list[list[float]] | None
    attempts: int
    created_at: float
    started_at: float | None
    finished_at: float | None
    seconds: float | None

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> CandidateRow:
        data = dict(row)
        data["genome"] = json.loads(data["genome"])
        data["history"] = json.loads(data["history"]) if data["history"] else None
        return cls(**data)


class Journal:
    """SQLite journal of one run (``<run dir>/journal.sqlite``)."""

    FILENAME = "journal.sqlite"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            self.path = self.path / self.FILENAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            with self.transaction():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                found = self.get_meta("schema_version")
                if found is None:
                    self.set_meta("schema_version", SCHEMA_VERSION)
                elif found != SCHEMA_VERSION:
                    raise LossevoError(
                        f"{self.path} has journal schema {found}, this lossevo writes {SCHEMA_VERSION}"
                    )
        except sqlite3.DatabaseError as err:
            raise LossevoError(f"{self.path} is not a readable lossevo journal ({err})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together or not at all."""
        if self._db.in_transaction:
            yield self._db
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row["value"])

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, json.dumps(value, sort_keys=True)),
            )

    # ------------------------------------------------------------------ strategy
    def _save_state(self, db: sqlite3.Connection, state: dict[str, Any] | None) -> None:
        if state is None:
            return
        db.execute(
            "INSERT INTO strategy_state (id, state, updated_at) VALUES (1, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            (json.dumps(state), time.time()),
        )

    def strategy_state(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT state FROM strategy_state WHERE id = 1").fetchone()
        return None if row is None else json.loads(row["state"])

    # ------------------------------------------------------------------ candidates
    def add_candidate(
        self,
        *,
        genome: dict[str, Any],
        key: str,
        equation: str,
        latex: str,
        seed: int,
        phase: str,
        parent_id: int | None,
        state: dict[str, Any] | None,
        candidate_id: int | None = None,
    ) -> int:
        """Record an asked candidate (``pending``) together with the strategy state after the ask."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO candidates (id, parent_id, phase, genome, key, equation, latex, seed, "
                "status, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (
                    candidate_id,
                    parent_id,
                    phase,
                    json.dumps(genome, sort_keys=True),
                    key,
                    equation,
                    latex,
                    seed,
                    time.time(),
                ),
            )
            self._save_state(db, state)
            return int(cursor.lastrowid)

    def mark_running(self, candidate_id: int) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE candidates SET status = 'running', started_at = ?, attempts = attempts + 1 "
                "WHERE id = ?",
                (time.time(), candidate_id),
            )

    def finish_candidate(
        self,
        candidate_id: int,
        *,
        status: str,
        fitness: float | None,
        stop_reason: str,
        detail: str,
        steps: int,
        train_acc: float | None,
        history: list[tuple[int, float]],
        seconds: float,
        state: dict[str, Any] | None,
    ) -> None:
        """Record a result together with the strategy state after it was told."""
        if status not in FINISHED:
            raise ValueError(f"finish_candidate needs status done or failed, got {status!r}")
        with self.transaction() as db:
            db.execute(
                "UPDATE candidates SET status = ?, fitness = ?, stop_reason = ?, detail = ?, "
                "steps = ?, train_acc = ?, history = ?, seconds = ?, finished_at = ? WHERE id = ?",
                (
                    status,
                    fitness,
                    stop_reason,
                    detail,
                    steps,
                    train_acc,
                    json.dumps(history),
                    seconds,
                    time.time(),
                    candidate_id,
                ),
            )
            self._save_state(db, state)

    def candidate(self, candidate_id: int) -> CandidateRow:
        row = self._db.execute("SELECT * FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
        if row is None:
            raise KeyError(candidate_id)
        return CandidateRow.from_row(row)

    def candidates(self, status: str | tuple[str, ...] | None = None) -> list[CandidateRow]:
        if status is None:
            rows = self._db.execute("SELECT * FROM candidates ORDER BY id").fetchall()
        else:
            statuses = (status,) if isinstance(status, str) else status
            marks = ",".join("?" * len(statuses))
            rows = self._db.execute(
                f"SELECT * FROM candidates WHERE status IN ({marks}) ORDER BY id", statuses
            ).fetchall()
        return [CandidateRow.from_row(r) for r in rows]

    def unfinished(self) -> list[CandidateRow]:
        """Candidates asked but not finished (pending, or running when the run stopped)."""
        return self.candidates(("pending", "running"))

    def count(self, status: str | tuple[str, ...] | None = None) -> int:
        if status is None:
            return int(self._db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0])
        statuses = (status,) if isinstance(status, str) else status
        marks = ",".join("?" * len(statuses))
        query = f"SELECT COUNT(*) FROM candidates WHERE status IN ({marks})"
        return int(self._db.execute(query, statuses).fetchone()[0])

    def best(self, k: int) -> list[CandidateRow]:
        rows = self._db.execute(
            "SELECT * FROM candidates WHERE status = 'done' AND fitness IS NOT NULL "
            "ORDER BY fitness DESC, id ASC LIMIT ?",
            (k,),
        ).fetchall()
        return [CandidateRow.from_row(r) for r in rows]

    # ------------------------------------------------------------------ baselines
    def add_baseline(self, name: str, equation: str, seed: int, result: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO baselines (name, equation, seed, status, fitness, "
                "stop_reason, detail, steps, seconds, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    name,
                    equation,
                    seed,
                    result["status"],
                    result["fitness"],
                    result["stop_reason"],
                    result["detail"],
                    result["steps"],
                    result["seconds"],
                    time.time(),
                ),
            )

    def baselines(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self._db.execute("SELECT * FROM baselines ORDER BY finished_at").fetchall()]

    def baseline(self, name: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT * FROM baselines WHERE name = ?", (name,)).fetchone()
        return None if row is None else dict(row)
