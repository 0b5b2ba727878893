"""Trainings that several searches share: the verdict's baseline runs of a sweep, trained once.

The searches of one multirun share their verdict's seeds, so the baselines' validation trainings
(cross-entropy run 3 at 900 steps, ...) are the same trainings in every job. This store keeps each
one's result under the identity of the training itself (its data, augmentation, model, recipe,
trainer, seeds and loss, as resolved; nothing of the search that asked for it), in
``<sweep root>/shared_trainings.sqlite``. A job looks there before training a baseline run and
adds what it trained; the first result stored for an identity is the one every job uses, so two
jobs that trained the same run at once still compare against the same numbers
(docs/methods.md §11 states what sharing costs the statistics).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from typing import Any

from omegaconf import OmegaConf

from lossevo.results import Fitness, StopReason
from lossevo.store.database import Database
from lossevo.store.identity import identity

# What a training's result depends on (lossevo.execution.tasks builds its surrogate from these).
TRAINING_PARTS = ("dataset", "augment", "model", "surrogate", "trainer", "seed", "data_seed", "loss")
# Failures of the machine, not of the training: never shared, the job that saw one retries.
TRANSIENT = (StopReason.ERROR, StopReason.WORKER)


def training_key(configs: Sequence[dict[str, Any]], labels: Sequence[str]) -> str:
    """The identity of one evaluation's trainings (each config's training parts, resolved, without
    where it runs) and of how they combine, as a digest."""
    parts = [identity(OmegaConf.create({k: c.get(k) for k in TRAINING_PARTS})) for c in configs]
    text = json.dumps({"trainings": parts, "settings": list(labels)}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class SharedTrainings(Database):
    """``shared_trainings.sqlite`` in a sweep's root (or any folder ``validate.share`` names)."""

    FILENAME = "shared_trainings.sqlite"
    KIND = "store of shared trainings"
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS trainings (
        key        TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        result     TEXT NOT NULL,
        trained_by TEXT NOT NULL,
        at         REAL NOT NULL
    )
    """
    SCHEMA_VERSION = 1

    def get(self, key: str) -> Fitness | None:
        row = self._db.execute("SELECT result FROM trainings WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        data = json.loads(row["result"])
        data["history"] = [tuple(h) for h in data.get("history") or []]
        return Fitness(**data)

    def put(self, key: str, name: str, result: Fitness, trained_by: str) -> Fitness:
        """Keep ``result`` unless a result for ``key`` is already kept; the kept one is returned."""
        if result.stop_reason in TRANSIENT:
            return result
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO trainings (key, name, result, trained_by, at) VALUES (?,?,?,?,?)",
                (key, name, json.dumps(result.to_dict()), trained_by, time.time()),
            )
        kept = self.get(key)
        assert kept is not None
        return kept

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM trainings").fetchone()[0])
