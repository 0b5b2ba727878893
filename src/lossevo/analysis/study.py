"""A study: one set of losses trained under several settings, journalled cell by cell.

The losses are N random valid losses from a space, a search's candidates, or named losses; a
setting is a name and a set of Hydra overrides on the study's config (``augment=mixup``,
``model=resnet9 surrogate.steps=2000``...). Every (loss, setting, run) cell is one training with
init seed ``SeedSequence([seed, loss, run])`` and the data seed of its run, shared by every loss
(the same for every setting: a paired design), written to
``study.sqlite`` in the run folder as it finishes, so re-running the same command resumes and
only trains the cells that are missing. Trainings run through the search's executors.
"""

from __future__ import annotations

import json
import logging
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from lossevo.config import build, resolved
from lossevo.config.composer import ConfigComposer
from lossevo.config.settings import group_size
from lossevo.errors import GenomeError, LossevoError
from lossevo.execution.executors import executor_from, run_tasks
from lossevo.execution.tasks import Task
from lossevo.genome import Genome, genome_from_dict
from lossevo.genome.graph import same_ops
from lossevo.losses import build_loss, genome_loss_config
from lossevo.losses.nodes import check_stored_loss
from lossevo.results import Fitness, Status, StopReason
from lossevo.store.database import Database, RecordedTraining, outcome_columns
from lossevo.store.identity import check_identity, identity
from lossevo.store.journal import edited_journal

log = logging.getLogger("lossevo")

_SCHEMA = """
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

# Keys of a study's config that may change on resume: the analysis, and which settings to train.
FREE_KEYS = ("settings", "runs", "top_k", "clusters", "target", "threshold", "stages", "average_previous")


@dataclass
class StudyLoss:
    id: int
    name: str
    source: str  # random | run:<folder>#<candidate> | named
    loss: dict[str, Any]  # the loss config node
    equation: str


@dataclass(frozen=True)
class CellKey:
    """The task key of one training of a study: a (loss, setting, run) cell and its seed."""

    loss_id: int
    setting: str
    run: int
    seed: int


@dataclass
class StudyResult(RecordedTraining):
    """One finished training of a study: a (loss, setting, run) cell."""

    loss_id: int
    setting: str
    run: int
    seed: int
    finished_at: float


class StudyJournal(Database):
    """``<run dir>/study.sqlite``: the losses, and one row per finished training."""

    FILENAME = "study.sqlite"
    KIND = "study"
    SCHEMA = _SCHEMA
    SCHEMA_VERSION = 1

    def losses(self) -> list[StudyLoss]:
        rows = self.query("SELECT * FROM losses ORDER BY id")
        return [
            StudyLoss(r["id"], r["name"], r["source"], _stored_loss(r["id"], r["loss"]), r["equation"])
            for r in rows
        ]

    def add_losses(self, losses: list[StudyLoss]) -> None:
        with self.transaction() as db:
            for s in losses:
                db.execute(
                    "INSERT INTO losses VALUES (?,?,?,?,?)",
                    (s.id, s.name, s.source, json.dumps(s.loss), s.equation),
                )

    def add_result(self, loss_id: int, setting: str, run: int, seed: int, result: Fitness) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (loss_id, setting, run, seed, *outcome_columns(result)),
            )

    def results(self) -> list[StudyResult]:
        rows = self.query("SELECT * FROM results ORDER BY loss_id, setting, run")
        return [StudyResult.from_row(r) for r in rows]

    def done(self) -> set[tuple[int, str, int]]:
        return {(r[0], r[1], r[2]) for r in self.query("SELECT loss_id, setting, run FROM results")}


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


def cell_data_seed(seed: int, run: int) -> int:
    """Batch order and augmentation of a study's ``run``: every loss sees the same batches."""
    return int(np.random.SeedSequence([seed, 0xDA7A, run]).generate_state(1)[0])


class Study:
    """Draws or loads the losses, trains every missing cell, and gives the accuracy matrix."""

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: Path,
        composer: ConfigComposer,
        settings: dict[str, list[str]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.composer = composer
        self.settings = settings if settings is not None else parse_settings(cfg.settings)
        self.runs = int(cfg.get("runs", 1))
        if self.runs < 1:
            raise LossevoError(f"runs must be >= 1, got {self.runs}")
        self.journal = StudyJournal(run_dir)
        try:
            self.journal.lock()
            if self.journal.created and any((run_dir / "trainings").glob("*")):
                raise LossevoError(
                    f"{run_dir} holds trainings but its study.sqlite is new or empty: the study was lost; "
                    "restore study.sqlite, or start a new study in another folder"
                )
            fresh = not self.journal.done()
            check_identity(self.journal, identity(cfg, FREE_KEYS), "study", fresh=fresh, same=same_ops)
            self._check_settings(fresh)
            self.losses = self.journal.losses() or self._draw_losses()
        except BaseException:
            self.journal.close()
            raise

    def _check_settings(self, fresh: bool) -> None:
        """A setting keeps its overrides for the life of the study (new settings may be added)."""
        stored = self.journal.get_meta("settings") or {}
        changed = [
            f"{name}: {' '.join(stored[name])!r} -> {' '.join(overrides)!r}"
            for name, overrides in self.settings.items()
            if name in stored and stored[name] != overrides
        ]
        if changed and not fresh:
            raise LossevoError(
                f"{self.run_dir} holds a study whose settings trained with other overrides "
                f"({'; '.join(changed)}); give the setting a new name, or use another hydra.run.dir"
            )
        self.journal.set_meta("settings", {**stored, **self.settings})

    def close(self) -> None:
        self.journal.close()

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
        from lossevo.store.journal import Journal

        if not (folder / Journal.FILENAME).is_file():
            raise LossevoError(f"losses.run={folder} holds no journal.sqlite; give a search's run folder")
        with Journal(folder) as journal:
            rows = journal.best(int(top)) if top else journal.candidates(Status.DONE)
        return [
            StudyLoss(
                offset + i,
                f"candidate_{row.id}",
                f"run:{folder}#{row.id}",
                genome_loss_config(f"candidate_{row.id}", _genome(folder, row)),
                row.equation,
            )
            for i, row in enumerate(rows, start=1)
        ]

    def _random(self, n: int, offset: int) -> list[StudyLoss]:
        from lossevo.genome.sampling import NovelSampler

        space = build(self.cfg.space, "space")
        integrity = resolved(OmegaConf.create(self.cfg.get("integrity") or {}))
        sampler = NovelSampler.seeded(space, int(self.cfg.seed), integrity)
        out = []
        for i in range(1, n + 1):
            genome = sampler.draw()
            loss = genome_loss_config(f"random_{i}", genome)
            out.append(StudyLoss(offset + i, f"random_{i}", "random", loss, genome.equation()))
        return out

    # ------------------------------------------------------------------ training
    def run(self, progress: Any = None) -> None:
        """Train every cell not in the journal yet."""
        self.train(
            [
                (loss, setting, run)
                for setting in self.settings
                for loss in self.losses
                for run in range(self.runs)
            ],
            progress,
        )

    def train(self, cells: list[tuple[StudyLoss, str, int]], progress: Any = None) -> None:
        """Train the given (loss, setting, run) cells that are not in the journal yet."""
        done = self.journal.done()
        todo = [c for c in cells if (c[0].id, c[1], c[2]) not in done]
        order = list(self.settings)  # one setting's run r for every loss in a row: they share batches
        todo.sort(key=lambda c: (order.index(c[1]), c[2]))
        log.info("study: %d of %d trainings to go", len(todo), len(cells))
        if progress is not None:
            wanted = {(c[0].id, c[1], c[2]) for c in cells}
            for row in self.journal.results():
                if (row.loss_id, row.setting, row.run) in wanted:
                    progress.add(row.fitness)
        if not todo:
            return
        queue = list(todo)

        def next_task() -> Task | None:
            if not queue:
                return None
            loss, setting, run = queue.pop(0)
            return self._task(loss, setting, run, cell_seed(int(self.cfg.seed), loss.id, run))

        by_id = {loss.id: loss for loss in self.losses}

        def on_result(task: Task, result: Fitness) -> None:
            key = task.key
            assert isinstance(key, CellKey)
            loss, setting, run = by_id[key.loss_id], key.setting, key.run
            self.journal.add_result(key.loss_id, setting, run, key.seed, result)
            if progress is not None:
                progress.add(result.fitness)
            shown = "failed" if result.fitness is None else f"{result.fitness:.4f}"
            reason = "" if result.stop_reason == StopReason.COMPLETED else f" [{result.stop_reason}]"
            log.info("%s on %s (run %d): %s%s", loss.name, setting, run + 1, shown, reason)

        executor = executor_from(self.cfg)
        try:
            run_tasks(executor, next_task, on_result, group_size(self.cfg))
        finally:
            executor.close()

    def _task(self, loss: StudyLoss, setting: str, run: int, seed: int) -> Task:
        folder = self.run_dir / "trainings" / setting / f"{loss.id:04d}_{run}"
        candidate = {"id": loss.id, "parent": None, "phase": setting, "dir": str(folder)}
        node = dict(loss.loss)
        smoothing = float(self.cfg.loss.get("label_smoothing") or 0.0)
        if smoothing:  # a training setting, as for a search: every loss of the study gets it
            node["label_smoothing"] = smoothing
        data_seed = cell_data_seed(int(self.cfg.seed), run)
        config = self.composer.training(node, seed, self.settings[setting], candidate, data_seed)
        return Task(CellKey(loss.id, setting, run, seed), [config], f"{loss.name}@{setting}")

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
            if row.setting not in seconds or row.loss_id not in index:
                continue
            i, j = index[row.loss_id], names.index(row.setting)
            seconds[row.setting].append(row.seconds or 0.0)
            if row.status == Status.DONE:
                sums[i, j] += row.fitness
                counts[i, j] += 1
            else:
                failed[i, j] = True
        with np.errstate(invalid="ignore"):
            acc = np.where((counts > 0) & ~failed, sums / np.maximum(counts, 1), np.nan)
        cost = [float(np.mean(seconds[n])) if seconds[n] else float("nan") for n in names]
        return acc, names, cost


def _equation(loss: dict[str, Any]) -> str:
    built = build_loss(OmegaConf.create(loss), "losses.names")
    return str(getattr(built, "equation", loss.get("name", "")))


def _stored_loss(loss_id: int, text: str) -> dict[str, Any]:
    """A loss node read back from study.sqlite, checked to be data a study writes (losses/nodes.py)."""
    try:
        node = json.loads(text)
        check_stored_loss(node)
    except (ValueError, GenomeError) as err:
        raise LossevoError(
            f"study.sqlite's loss {loss_id} is not one a study writes ({str(err)[:200]}): the journal was "
            "edited; restore it from a copy, or start the study in another folder"
        ) from None
    return node


def _genome(folder: Path, row: Any) -> Genome:
    try:
        return genome_from_dict(row.genome, validate=False)
    except GenomeError as err:
        raise LossevoError(edited_journal(folder, row.id, err)) from None
