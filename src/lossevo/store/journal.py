"""The run's journal: one SQLite database in the run folder, the source of truth of a search.

Every candidate is written when it is asked for (status ``pending``), marked ``running`` when its
evaluation starts, and ``done``/``failed`` with its fitness when it ends; the strategy's state is
written in the same transaction as each of those steps, so a run killed at any moment (SIGKILL
included) resumes from a consistent point: candidates not finished are evaluated again with their
recorded seed, and the strategy continues from the state that matches the journal.

Beside the candidates: ``rungs`` holds every fidelity rung's result of a candidate (rung 0 is the
result the strategy was told; a promotion adds a pending row for the next rung), ``reference``
the reference loss trained like the candidates at every rung, ``validation`` the verdict's
trainings with fresh seeds (one row per loss and run), and ``tuning`` the verdict's trainings on
validation data that chose each loss's learning rate and coefficient (``validate.tune``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from lossevo.results import FINISHED, UNFINISHED, Fitness, Status, StopReason
from lossevo.store.database import Database, RecordedTraining, outcome_columns, row_values

_STATUS = "CHECK (status IN ('pending', 'running', 'done', 'failed'))"

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS candidates (
    id          INTEGER PRIMARY KEY,
    parent_id   INTEGER REFERENCES candidates(id),
    phase       TEXT NOT NULL,
    genome      TEXT NOT NULL,
    key         TEXT NOT NULL,
    equation    TEXT NOT NULL,
    latex       TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    status      TEXT NOT NULL {_STATUS},
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
CREATE TABLE IF NOT EXISTS rungs (
    candidate_id INTEGER NOT NULL REFERENCES candidates(id),
    rung         INTEGER NOT NULL,
    status       TEXT NOT NULL {_STATUS},
    fitness      REAL,
    mean         REAL,
    std          REAL,
    runs         TEXT,
    stop_reason  TEXT,
    detail       TEXT,
    steps        INTEGER,
    seconds      REAL,
    seed         INTEGER,
    data_seed    INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL,
    finished_at  REAL,
    PRIMARY KEY (candidate_id, rung)
);
CREATE INDEX IF NOT EXISTS rungs_status ON rungs(status);
CREATE TABLE IF NOT EXISTS reference (
    name        TEXT NOT NULL,
    rung        INTEGER NOT NULL,
    equation    TEXT NOT NULL,
    seed        INTEGER NOT NULL,
    data_seed   INTEGER,
    status      TEXT NOT NULL {_STATUS},
    fitness     REAL,
    mean        REAL,
    std         REAL,
    runs        TEXT,
    parts       TEXT,
    stop_reason TEXT,
    detail      TEXT,
    steps       INTEGER,
    seconds     REAL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (name, rung)
);
CREATE TABLE IF NOT EXISTS validation (
    loss         TEXT NOT NULL,
    candidate_id INTEGER REFERENCES candidates(id),
    setting      TEXT NOT NULL DEFAULT '',
    budget       INTEGER NOT NULL,
    run          INTEGER NOT NULL,
    seed         INTEGER NOT NULL,
    status       TEXT NOT NULL {_STATUS},
    fitness      REAL,
    test_acc     REAL,
    stop_reason  TEXT,
    detail       TEXT,
    steps        INTEGER,
    seconds      REAL,
    finished_at  REAL NOT NULL,
    reused       INTEGER NOT NULL DEFAULT 0,
    test_hits    TEXT,
    point        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (loss, setting, budget, run)
);
CREATE TABLE IF NOT EXISTS tuning (
    loss        TEXT NOT NULL,
    budget      INTEGER NOT NULL,
    point       TEXT NOT NULL,
    run         INTEGER NOT NULL,
    seed        INTEGER NOT NULL,
    status      TEXT NOT NULL {_STATUS},
    fitness     REAL,
    stop_reason TEXT,
    detail      TEXT,
    steps       INTEGER,
    seconds     REAL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (loss, budget, point, run)
);
CREATE TABLE IF NOT EXISTS looks (
    id   INTEGER PRIMARY KEY,
    at   REAL NOT NULL,
    plan TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS strategy_state (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    state      TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""


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
    status: Status
    fitness: float | None  # the rung-0 result: what the strategy was told
    stop_reason: StopReason | None
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
        return cls(**row_values(row, ("genome", "history")))


@dataclass
class RungRow(RecordedTraining):
    """One candidate's result at one fidelity rung (``fitness`` ranks it there: the objective's
    value, the mean of its runs for ``mean``)."""

    JSON_COLUMNS = ("runs",)

    candidate_id: int
    rung: int
    mean: float | None  # mean accuracy over the rung's runs
    std: float | None  # their sample standard deviation (None for one run)
    runs: list[float] | None  # the accuracy of each run, in seed order
    attempts: int
    created_at: float
    finished_at: float | None
    seed: int | None = None  # model init of its first training (set when it starts)
    data_seed: int | None = None  # batch order and augmentation of its first training


@dataclass
class ReferenceRow(RecordedTraining):
    """The reference loss trained like a candidate at one rung (``name#k``: its k-th seed at rung 0,
    ``name@prescreen``: on the pre-screen)."""

    JSON_COLUMNS = ("runs", "parts")

    name: str
    rung: int
    equation: str
    seed: int
    mean: float | None
    std: float | None
    runs: list[float] | None
    parts: list[float] | None
    finished_at: float
    data_seed: int | None = None  # batches (None: the seed)


@dataclass
class ValidationRow(RecordedTraining):
    """One validation training of the verdict: ``fitness`` is its validation accuracy at its last
    step (a journal older than that: its best check), ``test_acc`` its test accuracy at the end of
    training (None: a row of a journal older than test figures)."""

    loss: str  # candidate_<id>, or a baseline's name
    candidate_id: int | None
    setting: str  # the verdict's setting ('': the search's own)
    budget: int  # the steps it was trained for (a verdict's budget)
    run: int
    seed: int
    test_acc: float | None
    finished_at: float
    reused: int = 0  # 1: trained by another search of the sweep (lossevo.store.shared_trainings)
    test_hits: str | None = None  # which test images it got right (lossevo.results.pack_hits)
    point: str = ""  # the tuning point it trained with (lossevo.verdict.tuning; '': untuned)


@dataclass
class TuningRow(RecordedTraining):
    """One tuning training of the verdict (``validate.tune``): ``loss`` trained at grid ``point``
    (its label, lossevo.verdict.tuning) for ``budget`` steps; ``fitness`` its validation accuracy
    at its last step. Never tested."""

    loss: str
    budget: int
    point: str
    run: int
    seed: int
    finished_at: float


@dataclass
class Look:
    """One computation of a verdict with its plan (runs, budgets, top_k, alpha, baselines, settings)."""

    id: int
    at: float
    plan: dict[str, Any]


def _std(values: list[float]) -> float | None:
    if len(values) < 2:
        return None
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


class Journal(Database):
    """SQLite journal of one search (``<run dir>/journal.sqlite``)."""

    FILENAME = "journal.sqlite"
    KIND = "journal"
    SCHEMA = _SCHEMA
    SCHEMA_VERSION = 6
    READS = (3, 4, 5)  # read-only (lossevo compare), journals of these schemas read as they are
    # 2 -> 3: validation rows gain their setting (the verdict's cells) and test accuracy; the
    # verdict's looks are kept. Old rows have no test accuracy: the next verdict trains them again.
    MIGRATIONS: ClassVar[dict[int, str]] = {
        2: f"""
        CREATE TABLE validation_v3 (
            loss TEXT NOT NULL, candidate_id INTEGER REFERENCES candidates(id),
            setting TEXT NOT NULL DEFAULT '', budget INTEGER NOT NULL, run INTEGER NOT NULL,
            seed INTEGER NOT NULL, status TEXT NOT NULL {_STATUS}, fitness REAL, test_acc REAL,
            stop_reason TEXT, detail TEXT, steps INTEGER, seconds REAL, finished_at REAL NOT NULL,
            PRIMARY KEY (loss, setting, budget, run));
        INSERT INTO validation_v3 (loss, candidate_id, setting, budget, run, seed, status, fitness,
            test_acc, stop_reason, detail, steps, seconds, finished_at)
            SELECT loss, candidate_id, '', budget, run, seed, status, fitness, NULL, stop_reason, detail,
                   steps, seconds, finished_at FROM validation;
        DROP TABLE validation;
        ALTER TABLE validation_v3 RENAME TO validation
        """,
        # 3 -> 4: a validation row says whether another search trained it (shared baselines).
        3: "ALTER TABLE validation ADD COLUMN reused INTEGER NOT NULL DEFAULT 0",
        # 4 -> 5: and which test images it got right (the verdict's bootstrap over images).
        4: "ALTER TABLE validation ADD COLUMN test_hits TEXT",
        # 5 -> 6: and the tuning point it trained with (validate.tune; '' untuned); the tuning table
        # itself is created like every table.
        5: "ALTER TABLE validation ADD COLUMN point TEXT NOT NULL DEFAULT ''",
    }

    def __enter__(self) -> Journal:
        return self

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
            now = time.time()
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
                    now,
                ),
            )
            if cursor.lastrowid is None:
                raise RuntimeError("sqlite returned no row id for an inserted candidate")
            candidate_id = int(cursor.lastrowid)
            db.execute(
                "INSERT INTO rungs (candidate_id, rung, status, created_at) VALUES (?, 0, 'pending', ?)",
                (candidate_id, now),
            )
            self._save_state(db, state)
            return candidate_id

    def mark_running(
        self, candidate_id: int, rung: int = 0, seed: int | None = None, data_seed: int | None = None
    ) -> None:
        """A rung's training handed to an executor, with the seeds of its model init and its
        batches (first training; further ones derive from them): enough to retrain it alone."""
        with self.transaction() as db:
            db.execute(
                "UPDATE rungs SET status = 'running', attempts = attempts + 1, "
                "seed = COALESCE(?, seed), data_seed = COALESCE(?, data_seed) "
                "WHERE candidate_id = ? AND rung = ?",
                (seed, data_seed, candidate_id, rung),
            )
            if rung == 0:
                db.execute(
                    "UPDATE candidates SET status = 'running', started_at = ?, attempts = attempts + 1 "
                    "WHERE id = ?",
                    (time.time(), candidate_id),
                )

    def finish_candidate(
        self, candidate_id: int, result: Fitness, state: dict[str, Any] | None, rung: int = 0
    ) -> None:
        """Record a rung's result together with the strategy state after it was told."""
        if result.status not in FINISHED:
            raise ValueError(f"finish_candidate needs status done or failed, got {result.status}")
        runs = result.per_run or ([result.fitness] if result.fitness is not None else [])
        mean = sum(runs) / len(runs) if result.ok and runs else None
        now = time.time()
        with self.transaction() as db:
            db.execute(
                "UPDATE rungs SET status = ?, fitness = ?, mean = ?, std = ?, runs = ?, stop_reason = ?, "
                "detail = ?, steps = ?, seconds = ?, finished_at = ? WHERE candidate_id = ? AND rung = ?",
                (
                    result.status.value,
                    result.fitness,
                    mean,
                    _std(runs) if result.ok else None,
                    json.dumps(runs),
                    result.stop_reason.value,
                    result.detail,
                    result.steps,
                    result.seconds,
                    now,
                    candidate_id,
                    rung,
                ),
            )
            if rung == 0:
                db.execute(
                    "UPDATE candidates SET status = ?, fitness = ?, stop_reason = ?, detail = ?, steps = ?, "
                    "train_acc = ?, history = ?, seconds = ?, finished_at = ? WHERE id = ?",
                    (
                        result.status.value,
                        result.fitness,
                        result.stop_reason.value,
                        result.detail,
                        result.steps,
                        result.train_acc,
                        json.dumps(result.history),
                        result.seconds,
                        now,
                        candidate_id,
                    ),
                )
            self._save_state(db, state)  # a promotion's result changes the strategy's ranking too

    def candidate(self, candidate_id: int) -> CandidateRow:
        row = self._db.execute("SELECT * FROM candidates WHERE id = ?", (candidate_id,)).fetchone()
        if row is None:
            raise KeyError(candidate_id)
        return CandidateRow.from_row(row)

    def candidates(self, status: Status | tuple[Status, ...] | None = None) -> list[CandidateRow]:
        if status is None:
            rows = self.query("SELECT * FROM candidates ORDER BY id")
        else:
            statuses = _values(status)
            marks = ",".join("?" * len(statuses))
            rows = self.query(f"SELECT * FROM candidates WHERE status IN ({marks}) ORDER BY id", statuses)
        return [CandidateRow.from_row(r) for r in rows]

    def unfinished(self) -> list[CandidateRow]:
        """Candidates asked but not finished at rung 0 (pending, or running when the run stopped)."""
        return self.candidates(UNFINISHED)

    def count(self, status: Status | tuple[Status, ...] | None = None) -> int:
        if status is None:
            return int(self._db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0])
        statuses = _values(status)
        marks = ",".join("?" * len(statuses))
        query = f"SELECT COUNT(*) FROM candidates WHERE status IN ({marks})"
        return int(self._db.execute(query, statuses).fetchone()[0])

    def best(self, k: int) -> list[CandidateRow]:
        """The ``k`` best candidates by their rung-0 fitness."""
        rows = self.query(
            "SELECT * FROM candidates WHERE status = 'done' AND fitness IS NOT NULL "
            "ORDER BY fitness DESC, id ASC LIMIT ?",
            (k,),
        )
        return [CandidateRow.from_row(r) for r in rows]

    # ------------------------------------------------------------------ rungs
    def promote(self, candidate_id: int, rung: int) -> None:
        """Record a promotion: the candidate's result at ``rung`` is now wanted."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO rungs (candidate_id, rung, status, created_at) VALUES (?, ?, 'pending', ?)",
                (candidate_id, rung, time.time()),
            )

    def rungs(self, rung: int | None = None) -> list[RungRow]:
        if rung is None:
            rows = self.query("SELECT * FROM rungs ORDER BY rung, candidate_id")
        else:
            rows = self.query("SELECT * FROM rungs WHERE rung = ? ORDER BY candidate_id", (rung,))
        return [RungRow.from_row(r) for r in rows]

    def unfinished_promotions(self) -> list[RungRow]:
        """Promotions (rung >= 1) not finished: pending, or running when the run stopped."""
        rows = self.query(
            "SELECT * FROM rungs WHERE rung > 0 AND status IN ('pending', 'running') "
            "ORDER BY created_at, rung"
        )
        return [RungRow.from_row(r) for r in rows]

    # ------------------------------------------------------------------ reference loss
    def add_reference(
        self, name: str, rung: int, equation: str, seed: int, result: Fitness, data_seed: int | None = None
    ) -> None:
        runs = result.per_run or ([result.fitness] if result.fitness is not None else [])
        mean = sum(runs) / len(runs) if result.ok and runs else None
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO reference (name, rung, equation, seed, data_seed, status, fitness, "
                "mean, std, runs, parts, stop_reason, detail, steps, seconds, finished_at) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    name,
                    rung,
                    equation,
                    seed,
                    data_seed,
                    result.status.value,
                    result.fitness,
                    mean,
                    _std(runs) if result.ok else None,
                    json.dumps(runs),
                    json.dumps(result.parts),
                    result.stop_reason.value,
                    result.detail,
                    result.steps,
                    result.seconds,
                    time.time(),
                ),
            )

    def references(self, rung: int | None = None) -> list[ReferenceRow]:
        if rung is None:
            rows = self.query("SELECT * FROM reference ORDER BY rung, name")
        else:
            rows = self.query("SELECT * FROM reference WHERE rung = ? ORDER BY name", (rung,))
        return [ReferenceRow.from_row(r) for r in rows]

    def reference(self, name: str, rung: int = 0) -> ReferenceRow | None:
        row = self._db.execute("SELECT * FROM reference WHERE name = ? AND rung = ?", (name, rung)).fetchone()
        return None if row is None else ReferenceRow.from_row(row)

    # ------------------------------------------------------------------ validation
    def add_validation(
        self,
        loss: str,
        candidate_id: int | None,
        budget: int,
        run: int,
        seed: int,
        result: Fitness,
        setting: str = "",
        reused: bool = False,
        point: str = "",
    ) -> None:
        """One validation training of ``loss`` at ``budget`` steps in ``setting`` (each budget and
        setting keeps its own rows); its validation and test accuracy. ``reused``: another search
        of the sweep trained it; ``point``: the tuning point it trained with ('': untuned)."""
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO validation (loss, candidate_id, setting, budget, run, seed, status, "
                "fitness, test_acc, stop_reason, detail, steps, seconds, finished_at, reused, test_hits, "
                "point) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    loss,
                    candidate_id,
                    setting,
                    budget,
                    run,
                    seed,
                    result.status.value,
                    result.fitness,
                    result.test_acc,
                    result.stop_reason.value,
                    result.detail,
                    result.steps,
                    result.seconds,
                    time.time(),
                    int(reused),
                    result.test_hits,
                    point,
                ),
            )

    def validations(self, budget: int | None = None, setting: str | None = None) -> list[ValidationRow]:
        where: list[str] = []
        parameters: list[Any] = []
        if budget is not None:
            where.append("budget = ?")
            parameters.append(budget)
        if setting is not None:
            where.append("setting = ?")
            parameters.append(setting)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.query(
            f"SELECT * FROM validation{clause} ORDER BY setting, budget, loss, run", tuple(parameters)
        )
        return [ValidationRow.from_row(r) for r in rows]

    # ------------------------------------------------------------------ the verdict's tuning
    def add_tuning(self, loss: str, budget: int, point: str, run: int, seed: int, result: Fitness) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO tuning (loss, budget, point, run, seed, status, fitness, "
                "stop_reason, detail, steps, seconds, finished_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (loss, budget, point, run, seed, *outcome_columns(result)),
            )

    def tunings(self, budget: int | None = None) -> list[TuningRow]:
        try:
            if budget is None:
                rows = self.query("SELECT * FROM tuning ORDER BY loss, point, run")
            else:
                rows = self.query(
                    "SELECT * FROM tuning WHERE budget = ? ORDER BY loss, point, run", (budget,)
                )
        except sqlite3.OperationalError:  # a journal opened read-only from before tuning existed
            return []
        return [TuningRow.from_row(r) for r in rows]

    # ------------------------------------------------------------------ the verdict's looks
    def add_look(self, plan: dict[str, Any]) -> bool:
        """Record that the verdict was computed with ``plan``, unless the last look had the same plan;
        True when a look was added."""
        looks = self.looks()
        if looks and looks[-1].plan == plan:
            return False
        with self.transaction() as db:
            db.execute(
                "INSERT INTO looks (at, plan) VALUES (?, ?)", (time.time(), json.dumps(plan, sort_keys=True))
            )
        return True

    def looks(self) -> list[Look]:
        rows = self.query("SELECT * FROM looks ORDER BY id")
        return [Look(r["id"], r["at"], json.loads(r["plan"])) for r in rows]


def edited_journal(run_dir: Any, candidate_id: int, problem: Exception) -> str:
    """The message for a journal row no search wrote (a hand-edited or crafted journal)."""
    return (
        f"{run_dir}/journal.sqlite: candidate {candidate_id} is not one a search writes "
        f"({str(problem)[:200]}); nothing was run or trained: the journal was edited, so restore it from "
        "a copy or start the search in another folder"
    )


def _values(status: Status | tuple[Status, ...]) -> tuple[str, ...]:
    statuses = (status,) if isinstance(status, (Status, str)) else status
    return tuple(Status(s).value for s in statuses)
