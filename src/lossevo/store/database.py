"""The SQLite base of every run database: a search's journal and a study's cells.

One connection per process in WAL mode (readers never block the writer), a schema version checked
on open, a ``meta`` table of JSON values, and :meth:`Database.transaction` (``BEGIN IMMEDIATE``: all
writes inside commit together or not at all). A run that owns its folder takes
:meth:`Database.lock`, an advisory ``flock`` the kernel releases when the process dies, so a second
process on the same folder is refused with one line while a killed one never leaves it stuck.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from lossevo.errors import LossevoError
from lossevo.results import Fitness, Status, StopReason

R = TypeVar("R", bound="RecordedTraining")
_META = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"


class Database:
    """Subclasses set ``FILENAME`` (in a run folder), ``KIND`` (for messages), ``SCHEMA`` (``CREATE
    ... IF NOT EXISTS`` statements), ``SCHEMA_VERSION`` and ``MIGRATIONS``: the SQL that takes a
    database of version v to v + 1, run in one transaction when an older database is opened (so
    a run folder written by an earlier lossevo resumes)."""

    FILENAME: ClassVar[str]
    KIND: ClassVar[str]
    SCHEMA: ClassVar[str]
    SCHEMA_VERSION: ClassVar[int]
    MIGRATIONS: ClassVar[dict[int, str]] = {}
    READS: ClassVar[tuple[int, ...]] = ()  # older schemas a read-only open reads without migrating

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():  # a run folder
            self.path = self.path / self.FILENAME
        self._lock_file: Any = None
        self.created = False  # this open created the database (no schema was there)
        if readonly:
            self._open_readonly()
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            damage = [r[0] for r in self._db.execute("PRAGMA quick_check").fetchall() if r[0] != "ok"]
            if damage:
                raise LossevoError(self._damaged(damage[0]))
            with self.transaction() as db:
                for statement in [_META, *self.SCHEMA.split(";")]:
                    if statement.strip():
                        db.execute(statement)
                found = self.get_meta("schema_version")
                if found is None:
                    self.created = True
                    self.set_meta("schema_version", self.SCHEMA_VERSION)
                elif found < self.SCHEMA_VERSION and all(
                    v in self.MIGRATIONS for v in range(found, self.SCHEMA_VERSION)
                ):
                    for version in range(found, self.SCHEMA_VERSION):
                        for statement in self.MIGRATIONS[version].split(";"):
                            if statement.strip():
                                db.execute(statement)
                    self.set_meta("schema_version", self.SCHEMA_VERSION)
                elif found != self.SCHEMA_VERSION:
                    raise LossevoError(
                        f"{self.path} is a lossevo {self.KIND} of schema {found}; this lossevo reads "
                        f"schema {self.SCHEMA_VERSION}: open it with the lossevo version that wrote it, "
                        "or start a new run in another folder"
                    )
        except sqlite3.OperationalError as err:
            raise LossevoError(storage_problem(self.path, err)) from None
        except sqlite3.DatabaseError as err:
            if "malformed" in str(err):
                raise LossevoError(self._damaged(str(err))) from None
            raise LossevoError(f"{self.path} is not a readable lossevo {self.KIND} ({err})") from None

    def _open_readonly(self) -> None:
        """Open for reading only (``lossevo compare``): nothing is created, migrated or written."""
        if not self.path.is_file():
            raise LossevoError(f"{self.path} does not exist: name a run folder that holds a {self.KIND}")
        try:
            self._db = sqlite3.connect(
                f"{self.path.absolute().as_uri()}?mode=ro", uri=True, timeout=30.0, isolation_level=None
            )
            self._db.row_factory = sqlite3.Row
            found = self.get_meta("schema_version")
        except sqlite3.DatabaseError as err:
            raise LossevoError(f"{self.path} is not a readable lossevo {self.KIND} ({err})") from None
        if found != self.SCHEMA_VERSION and found not in self.READS:
            self._db.close()
            raise LossevoError(
                f"{self.path} is a lossevo {self.KIND} of schema {found}; this lossevo reads schema "
                f"{self.SCHEMA_VERSION} (resume the run once with this lossevo to upgrade it)"
            )

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one consistent state, even while another process writes (WAL)."""
        self._db.execute("BEGIN")
        try:
            yield
        finally:
            self._db.execute("COMMIT")

    def _damaged(self, what: str) -> str:
        return (
            f"{self.path} is damaged ({what}); restore it from a copy, or save what it holds with "
            f"`sqlite3 {self.path} .recover > recovered.sql`"
        )

    # ------------------------------------------------------------------ life cycle
    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()  # closing the descriptor releases the flock
            self._lock_file = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lock(self) -> None:
        """Own this run folder until :meth:`close` (or the process's death)."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        handle = open(lock_path, "a+")  # noqa: SIM115 - held open for the lock's lifetime
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise LossevoError(
                f"{self.path.parent} is in use by {owner}; wait for it to finish (or stop it) "
                "before running again in this folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()}")
        handle.flush()
        self._lock_file = handle

    # ------------------------------------------------------------------ writes
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together or not at all (nested blocks join the outer one)."""
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

    def query(self, sql: str, parameters: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self._db.execute(sql, parameters).fetchall()

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


@dataclass
class RecordedTraining:
    """The columns every recorded training (or evaluation) shares; subclasses add their keys.
    ``from_row`` builds any of them from its table's row."""

    JSON_COLUMNS: ClassVar[tuple[str, ...]] = ()

    status: Status
    fitness: float | None
    stop_reason: StopReason | None
    detail: str | None
    steps: int | None
    seconds: float | None

    @classmethod
    def from_row(cls: type[R], row: sqlite3.Row) -> R:
        return cls(**row_values(row, cls.JSON_COLUMNS))


def outcome_columns(result: Fitness) -> tuple[Any, ...]:
    """A training's recorded outcome, in the column order every table of trainings ends with:
    status, fitness, stop_reason, detail, steps, seconds, finished_at (now)."""
    return (
        result.status.value,
        result.fitness,
        result.stop_reason.value,
        result.detail,
        result.steps,
        result.seconds,
        time.time(),
    )


def storage_problem(path: Path, err: BaseException) -> str:
    """One line for a database or file that cannot be written: what, why, and what to do."""
    text = str(err).lower()
    code = getattr(err, "errno", None)
    if "readonly" in text or "read-only" in text or code in (errno.EROFS, errno.EACCES, errno.EPERM):
        why = "it is read-only; make the folder and its files writable"
    elif "disk is full" in text or code in (errno.ENOSPC, errno.EDQUOT):
        why = "the disk is full; free some space"
    else:
        why = f"{text}; check the folder"
    return f"{path} could not be written ({why}), then run the same command again to resume"


def row_values(row: sqlite3.Row, json_columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row as the keyword arguments of its typed dataclass: JSON columns decoded, ``status`` and
    ``stop_reason`` as enums."""
    data = dict(row)
    for column in json_columns:
        data[column] = json.loads(data[column]) if data[column] else None
    if "status" in data:
        data["status"] = Status(data["status"])
    if data.get("stop_reason") is not None:
        data["stop_reason"] = StopReason(data["stop_reason"])
    return data
