"""A study: one set of losses trained under several settings, journalled cell by cell.

The losses are N random valid losses from a space, a search's candidates, or named losses; a
setting is a name and a set of Hydra overrides on the study's config (``augment=mixup``,
``model=resnet9 surrogate.steps=2000``...). Every (loss, setting, run) cell is one training with
seed ``SeedSequence([seed, loss, run])`` (the same for every setting: a paired design), written to
``study.sqlite`` in the run folder as it finishes, so re-running the same command resumes and
only trains the cells that are missing. Trainings run through the search's executors.
"""

from __future__ import annotations

import json
import logging
import shlex
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from lossevo.config import build
from lossevo.errors import LossevoError
from lossevo.executors import Task

log = logging.getLogger("lossevo")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS losses (
    id       INTEGER PRIMARY KEY,
    name     TEXT NOT NULL,
    source   TEXT NOT NULL,
    loss     TEXT NOT NULL,
    equation TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    loss_id     INTEGER NOT NULL REFERENCES losses(id),
    setting     TEXT NOT NULL,
    run         INTEGER NOT NULL,
    seed        INTEGER NOT NULL,
    status      TEXT NOT NULL,
    fitness     REAL,
    stop_reason TEXT,
    detail      TEXT,
    steps       INTEGER,
    seconds     REAL,
    finished_at REAL NOT NULL,
    PRIMARY KEY (loss_id, setting, run)
);
"""


@dataclass
class StudyLoss:
    id: int
    name: str
    source: str  # random | run:<folder>#<candidate> | named
    loss: dict[str, Any]  # the loss config node
    equation: str


class StudyJournal:
    """``<run dir>/study.sqlite``: the losses, and one row per finished training."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "study.sqlite"
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise LossevoError(f"{self.path} is not a readable lossevo study ({err})") from None

    def close(self) -> None:
        self._db.close()

    def get_meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def losses(self) -> list[StudyLoss]:
        rows = self._db.execute("SELECT * FROM losses ORDER BY id").fetchall()
        return [
            StudyLoss(r["id"], r["name"], r["source"], json.loads(r["loss"]), r["equation"]) for r in rows
        ]

    def add_losses(self, losses: list[StudyLoss]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for s in losses:
                self._db.execute(
                    "INSERT INTO losses VALUES (?,?,?,?,?)",
                    (s.id, s.name, s.source, json.dumps(s.loss), s.equation),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def add_result(self, loss_id: int, setting: str, run: int, seed: int, result: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                loss_id,
                setting,
                run,
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

    def results(self) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT * FROM results ORDER BY loss_id, setting, run").fetchall()
        return [dict(r) for r in rows]

    def done(self) -> set[tuple[int, str, int]]:
        rows = self._db.execute("SELECT loss_id, setting, run FROM results").fetchall()
        return {(r[0], r[1], r[2]) for r in rows}


def parse_settings(node: Any) -> dict[str, list[str]]:
    """``settings``: a list whose items are an augmentation option (``mixup`` = ``augment=mixup``),
    ``"name: override override ..."`` or a one-key mapping ``{name: "overrides"}``."""
    example = (
        "e.g. settings=[base,mixup] or \"settings=['small: surrogate.steps=100','full: model=resnet9']\""
    )
    if node is None or len(node) == 0:
        raise LossevoError(f"the study needs settings, {example}")
    items = node.items() if OmegaConf.is_dict(node) or isinstance(node, dict) else None
    out: dict[str, list[str]] = {}
    for item in items if items is not None else node:
        if isinstance(item, tuple):
            name, overrides = item
        elif OmegaConf.is_dict(item) or isinstance(item, dict):
            ((name, overrides),) = item.items()
        elif ":" in str(item):
            name, overrides = str(item).split(":", 1)
        else:
            name, overrides = item, f"augment={item}"
        name = str(name).strip()
        if not name or name in out:
            raise LossevoError(
                f"settings: {'a duplicate name ' + name if name else 'an empty name'}; {example}"
            )
        out[name] = shlex.split(str(overrides or ""))
    return out


def cell_seed(seed: int, loss_id: int, run: int) -> int:
    return int(np.random.SeedSequence([seed, 0x57D, loss_id, run]).generate_state(1)[0])


class Study:
    """Draws or loads the losses, trains every missing cell, and gives the accuracy matrix."""

    def __init__(
        self, cfg: DictConfig, run_dir: Path, configs: Any, settings: dict[str, list[str]] | None = None
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.configs = configs  # a driver.CandidateConfigs over this study's config
        self.settings = settings if settings is not None else parse_settings(cfg.settings)
        self.runs = int(cfg.get("runs", 1))
        if self.runs < 1:
            raise LossevoError(f"runs must be >= 1, got {self.runs}")
        self.journal = StudyJournal(run_dir)
        self._check_identity()
        self.losses = self.journal.losses() or self._draw_losses()

    def _check_identity(self) -> None:
        identity = {
            "losses": OmegaConf.to_container(self.cfg.losses, resolve=True),
            "seed": int(self.cfg.seed),
            "space": OmegaConf.to_container(self.cfg.space, resolve=True),
        }
        stored = self.journal.get_meta("identity")
        if stored is None:
            self.journal.set_meta("identity", identity)
        elif stored != identity:
            changed = [k for k in identity if stored.get(k) != identity[k]]
            raise LossevoError(
                f"{self.run_dir} holds a study of other losses ({', '.join(changed)} differ); "
                "use the same losses/seed/space to resume it (settings may be added), "
                "or another hydra.run.dir"
            )

    # ------------------------------------------------------------------ losses
    def _draw_losses(self) -> list[StudyLoss]:
        spec = self.cfg.losses
        out: list[StudyLoss] = []
        for name in spec.get("names") or []:
            loss = {"_target_": "lossevo.losses.get_loss", "name": str(name)}
            out.append(StudyLoss(len(out) + 1, str(name), "named", loss, _equation(loss)))
        if spec.get("run"):
            out += self._from_run(Path(str(spec.run)), spec.get("top"), len(out))
        if int(spec.get("random") or 0) > 0:
            out += self._random(int(spec.random), len(out))
        if not out:
            raise LossevoError(
                "the study has no losses: set losses.random=N, losses.run=<folder> or losses.names"
            )
        self.journal.add_losses(out)
        return out

    def _from_run(self, folder: Path, top: int | None, offset: int) -> list[StudyLoss]:
        from lossevo.journal import Journal

        if not (folder / Journal.FILENAME).is_file():
            raise LossevoError(f"losses.run={folder} holds no journal.sqlite; give a search's run folder")
        with Journal(folder) as journal:
            rows = journal.best(int(top)) if top else journal.candidates("done")
        return [
            StudyLoss(
                offset + i,
                f"candidate_{row.id}",
                f"run:{folder}#{row.id}",
                {
                    "_target_": "lossevo.losses.genome_loss",
                    "name": f"candidate_{row.id}",
                    "genome": row.genome,
                },
                row.equation,
            )
            for i, row in enumerate(rows, start=1)
        ]

    def _random(self, n: int, offset: int) -> list[StudyLoss]:
        from lossevo.strategies.random_search import RandomSearch

        space = build(self.cfg.space, "space")
        integrity = OmegaConf.to_container(OmegaConf.create(self.cfg.get("integrity") or {}), resolve=True)
        sampler = RandomSearch(space, seed=int(self.cfg.seed), integrity=integrity)  # type: ignore[arg-type]
        out = []
        for i in range(1, n + 1):
            genome = sampler.ask().genome
            loss = {
                "_target_": "lossevo.losses.genome_loss",
                "name": f"random_{i}",
                "genome": genome.to_dict(),
            }
            out.append(StudyLoss(offset + i, f"random_{i}", "random", loss, genome.equation()))
        return out

    # ------------------------------------------------------------------ training
    def run(self, progress: Any = None) -> None:
        """Train every cell not in the journal yet."""
        self.train([(loss, setting, run) for setting in self.settings for loss in self.losses
                    for run in range(self.runs)], progress)  # fmt: skip

    def train(self, cells: list[tuple[StudyLoss, str, int]], progress: Any = None) -> None:
        """Train the given (loss, setting, run) cells that are not in the journal yet."""
        done = self.journal.done()
        todo = [c for c in cells if (c[0].id, c[1], c[2]) not in done]
        log.info("study: %d of %d trainings to go", len(todo), len(cells))
        if progress is not None:
            wanted = {(c[0].id, c[1], c[2]) for c in cells}
            for row in self.journal.results():
                if (row["loss_id"], row["setting"], row["run"]) in wanted:
                    progress.add(row["fitness"])
        if not todo:
            return
        node = self.cfg.get("executor") or {"_target_": "lossevo.executors.InlineExecutor"}
        executor = build(node, "executor")
        pending: dict[int, tuple[StudyLoss, str, int, int]] = {}
        try:
            queue = list(enumerate(todo))
            while queue or executor.busy:
                while queue and executor.busy < executor.capacity:
                    index, (loss, setting, run) = queue.pop(0)
                    seed = cell_seed(int(self.cfg.seed), loss.id, run)
                    executor.submit(self._task(index, loss, setting, run, seed))
                    pending[index] = (loss, setting, run, seed)
                for index, result in executor.wait():
                    loss, setting, run, seed = pending.pop(index)
                    self.journal.add_result(loss.id, setting, run, seed, result)
                    if progress is not None:
                        progress.add(result["fitness"])
                    log.info(
                        "%s on %s (run %d): %s%s",
                        loss.name,
                        setting,
                        run + 1,
                        "failed" if result["fitness"] is None else f"{result['fitness']:.4f}",
                        "" if result["stop_reason"] == "completed" else f" [{result['stop_reason']}]",
                    )
        finally:
            executor.close()

    def _task(self, index: int, loss: StudyLoss, setting: str, run: int, seed: int) -> Task:
        folder = self.run_dir / "trainings" / setting / f"{loss.id:04d}_{run}"
        config = self.configs.build(loss.id, seed, {}, folder, extra=self.settings[setting])
        config["loss"] = loss.loss
        return Task(index, [config], f"{loss.name}@{setting}", None)

    # ------------------------------------------------------------------ results
    def matrix(self) -> tuple[np.ndarray, list[str], list[float]]:
        """Mean accuracy per (loss, setting) over runs (NaN: failed or missing), the setting
        names, and the mean seconds per training of each setting."""
        names = list(self.settings)
        index = {loss.id: i for i, loss in enumerate(self.losses)}
        sums = np.zeros((len(self.losses), len(names)))
        counts = np.zeros_like(sums)
        failed = np.zeros_like(sums, dtype=bool)
        seconds: dict[str, list[float]] = {n: [] for n in names}
        for row in self.journal.results():
            if row["setting"] not in seconds or row["loss_id"] not in index:
                continue
            i, j = index[row["loss_id"]], names.index(row["setting"])
            seconds[row["setting"]].append(row["seconds"] or 0.0)
            if row["status"] == "done":
                sums[i, j] += row["fitness"]
                counts[i, j] += 1
            else:
                failed[i, j] = True
        with np.errstate(invalid="ignore"):
            acc = np.where((counts > 0) & ~failed, sums / np.maximum(counts, 1), np.nan)
        cost = [float(np.mean(seconds[n])) if seconds[n] else float("nan") for n in names]
        return acc, names, cost


def _equation(loss: dict[str, Any]) -> str:
    built = build(OmegaConf.create(loss), "losses.names")
    return str(getattr(built, "equation", loss.get("name", "")))


def _genome_loss(name: str, genome: dict[str, Any]) -> dict[str, Any]:
    return {"_target_": "lossevo.losses.genome_loss", "name": name, "genome": genome}
