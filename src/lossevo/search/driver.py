"""The search: strategy -> tasks -> executor -> journal -> strategy, then the verdict.

Every step is journalled (see :mod:`lossevo.store.journal`), so re-running with the same run folder
resumes: finished trainings are never re-run, unfinished ones are evaluated again with their
recorded seeds, and the strategy continues from the state saved with the last journal write.

Everything the search trains is a :class:`~lossevo.execution.tasks.Task` handed to the run's executor
through :func:`~lossevo.execution.executors.run_tasks`: the reference loss at every rung, candidates at
rung 0, promotions (:mod:`lossevo.search.fidelity`), and the verdict's validation runs
(:mod:`lossevo.verdict.report`). A free executor slot goes, in this order, to the reference loss, to
work that must be redone (a retry, an evaluation interrupted by a kill), to a promotion, and only
then to a new candidate from the strategy.

What the strategy is told: a candidate's rung-0 result, as soon as it arrives (``tell``), so a
steady-state search never waits for long trainings; a promoted candidate's later results are
reported with ``promoted(id, rung, fitness)``, which regularized evolution uses to rank its
population by (highest rung reached, result there); generational strategies have closed that
generation and keep their rung-0 ranking. Scales of different rungs are never mixed in one number.
"""

from __future__ import annotations

import logging
import shlex
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from lossevo.config import build, plain
from lossevo.config.composer import ConfigComposer
from lossevo.config.settings import DriverSettings, FidelitySettings, ValidateSettings, validated
from lossevo.errors import LossevoError
from lossevo.execution.executors import Executor, executor_from, run_tasks
from lossevo.execution.tasks import Task, group_size
from lossevo.genome import genome_from_dict
from lossevo.losses import genome_loss_config
from lossevo.results import FINISHED, Fitness, Status, StopReason
from lossevo.search.fidelity import Fidelity, rung_seed, training_seeds
from lossevo.search.objectives import Objective
from lossevo.search.strategies.base import Proposal, Strategy
from lossevo.store.identity import check_identity, identity
from lossevo.store.journal import CandidateRow, Journal, ReferenceRow
from lossevo.tracking.progress import SearchProgress
from lossevo.tracking.tracker import Tracker, group_for
from lossevo.verdict.report import Finalist, Verdict, finalists, validation_overrides, validation_seeds

log = logging.getLogger("lossevo")

# Keys of the search node the driver reads itself (not strategy arguments).
DRIVER_SEARCH_KEYS = ("budget", "prescreen", "fidelity")
# Keys that may change when a search is resumed: how much is trained and where, never how.
FREE_KEYS = ("search.budget", "top_k", "driver", "validate")  # the verdict keeps rows per budget


def build_strategy(cfg: DictConfig) -> Strategy:
    """The search strategy of an ``evolve`` config, on its space, seeded from the run's seed."""
    space = build(cfg.space, "space")
    resolved = OmegaConf.to_container(cfg.search, resolve=True)  # reads root keys (integrity, classes)
    node = {k: v for k, v in resolved.items() if k not in DRIVER_SEARCH_KEYS}  # type: ignore[union-attr]
    return build(OmegaConf.create(node), "search", space=space, seed=int(cfg.seed))


def candidate_seed(run_seed: int, candidate_id: int) -> int:
    """The training seed of one candidate, derived from the run's seed."""
    return int(np.random.SeedSequence([run_seed, candidate_id]).generate_state(1)[0])


def reference_seed(run_seed: int, run: int = 0) -> int:
    """The reference loss's rung-0 seed of its ``run``-th training (run 0 is the reference)."""
    key = [run_seed, 0xBA5E] + ([run] if run else [])
    return int(np.random.SeedSequence(key).generate_state(1)[0])


@dataclass
class SearchOutcome:
    run_dir: Path
    evaluated: int
    failed: int
    promotions: int
    best: list[CandidateRow]  # the written losses, best first (by the verdict when there is one)
    finalists: list[Finalist]  # the same, with the highest rung each reached and its result there
    reference: ReferenceRow | None  # the reference loss at rung 0 (the candidates' first comparison)
    top_reference: ReferenceRow | None  # and at the highest rung it trained at
    loss_configs: list[Path]
    verdict: Verdict | None = None
    files: dict[str, Path] | None = None


class Driver:
    """Runs one search in ``run_dir`` from a composed ``evolve`` config."""

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: Path,
        composer: ConfigComposer,
        on_result: Callable[[CandidateRow, Fitness, int], None] | None = None,
        progress: SearchProgress | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.composer = composer
        self.on_result = on_result
        self.progress = progress
        self.budget = _positive_int(cfg.search.budget, "search.budget")
        self.seed = _int(cfg.seed, "seed")
        self.settings: DriverSettings = validated(cfg.get("driver"), DriverSettings, "driver")
        self.objective = Objective.from_config(cfg.get("objective"))
        fidelity = cfg.search.get("fidelity")
        self.fidelity = Fidelity.from_settings(
            validated(fidelity, FidelitySettings, "search.fidelity"), int(cfg.surrogate.steps)
        )
        self.validate: ValidateSettings = validated(cfg.get("validate"), ValidateSettings, "validate")
        self.group = group_size(cfg)  # candidates per evaluation (surrogate.population)
        prescreen = cfg.search.get("prescreen") or []
        self.prescreen = shlex.split(prescreen) if isinstance(prescreen, str) else [str(o) for o in prescreen]
        self.reference_name = str(cfg.loss.get("name") or "reference")
        # Label smoothing is a training setting, as in the authors' code: the user's
        # `loss.label_smoothing` applies to every candidate as to the reference.
        self.label_smoothing = float(cfg.loss.get("label_smoothing") or 0.0)
        self.strategy = build_strategy(cfg)  # a bad search config fails before the folder is touched
        run_dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(run_dir)
        try:
            self.journal.lock()
            if self.journal.created and any((run_dir / "candidates").glob("*")):
                raise LossevoError(
                    f"{run_dir} holds candidate folders but its journal is new or empty: the journal was "
                    "lost; restore journal.sqlite, or start a new search in another folder"
                )
            check_identity(self.journal, identity(cfg, FREE_KEYS), "search", fresh=self._nothing_recorded())
            state = self.journal.strategy_state()
            if state is not None:
                self.strategy.load_state_dict(state)
        except BaseException:
            self.journal.close()
            raise
        self._phases = {row.id: row.phase for row in self.journal.candidates()}
        if progress is not None:
            for row in self.journal.candidates(FINISHED):
                progress.add(row.fitness)
            reference = self.journal.reference(self.reference_name)
            progress.reference = None if reference is None else reference.fitness
        self.tracker = Tracker(
            cfg.get("logger"),
            run_dir,
            group=group_for(run_dir),
            job_type="search",
            name=f"search-{run_dir.name}",
            config=plain(cfg),
        )
        self._references: deque[Task] = deque()  # reference trainings not yet journalled
        self._ready: deque[Task] = deque()  # retries and interrupted work, before anything new
        self._outstanding_references: set[Any] = set()
        self._tries: dict[Any, int] = {}

    def _nothing_recorded(self) -> bool:
        return self.journal.count(FINISHED) == 0 and not self.journal.references()

    # ------------------------------------------------------------------ loop
    def run(self) -> SearchOutcome:
        executor = executor_from(self.cfg)
        try:
            self._queue_references()
            for row in self.journal.unfinished():  # were running when the last run stopped
                self._ready.append(self._candidate_task(row, 0))
            for promotion in self.journal.unfinished_promotions():
                self._ready.append(self._candidate_task(self.journal.candidate(promotion.candidate_id),
                                                        promotion.rung))  # fmt: skip
            run_tasks(executor, self._next_task, self._on_result, self.group)
            if self.journal.count() < self.budget:
                raise RuntimeError("the strategy waits for results, but no evaluation is outstanding")
            verdict = self._verdict(executor)
            outcome = self._finish(verdict)
        finally:
            executor.close()
            self.tracker.finish()
            self.journal.close()
        return outcome

    def _next_task(self) -> Task | None:
        if self._references:
            return self._submitted(self._references.popleft())
        if self.objective.combine == "wins" and self._outstanding_references:
            return None  # a candidate's wins are counted against the reference's results
        if self._ready:
            return self._submitted(self._ready.popleft())
        if not self.fidelity.single:
            promotion = self.fidelity.promotion(self.journal.rungs(), self._groups())
            if promotion is not None:
                candidate_id, rung = promotion
                self.journal.promote(candidate_id, rung)
                row = self.journal.candidate(candidate_id)
                log.info("candidate %d promoted to rung %d (%s steps)", candidate_id, rung,
                         f"{self.fidelity.steps[rung]:,}")  # fmt: skip
                return self._submitted(self._candidate_task(row, rung))
        if self.journal.count() >= self.budget:
            return None
        proposal = self.strategy.ask()
        if proposal is None:
            return None  # a generational strategy waits for its outstanding results
        self._record(proposal)
        return self._submitted(self._candidate_task(self.journal.candidate(proposal.id), 0))

    def _submitted(self, task: Task) -> Task:
        self._tries[task.key] = self._tries.get(task.key, 0) + 1
        if task.key[0] == "candidate":
            first = task.configs[0]
            self.journal.mark_running(task.key[1], task.key[2], first["seed"], first.get("data_seed"))
        return task

    def _retried(self, task: Task, result: Fitness, queue: deque[Task]) -> bool:
        """A broken evaluation (stop reason in ``driver.retry_on``) goes back to the front of
        ``queue`` until it has run ``driver.retries`` + 1 times in this process."""
        broken = not result.ok and result.stop_reason in self.settings.retry_on
        if broken and self._tries[task.key] <= self.settings.retries:
            log.warning("%s failed (%s: %s); retrying", task.name, result.stop_reason, result.detail)
            queue.appendleft(task)
            return True
        return False

    def _on_result(self, task: Task, result: Fitness) -> None:
        if self._retried(task, result, self._ready):
            return
        if task.key[0] == "reference":
            self._reference_result(task, result)
        else:
            self._candidate_result(task, result)

    # ------------------------------------------------------------------ candidates
    def _record(self, proposal: Proposal) -> None:
        genome = proposal.genome
        self.journal.add_candidate(
            candidate_id=proposal.id,
            genome=genome.to_dict(),
            key=genome.key(),
            equation=genome.equation(),
            latex=genome.latex(),
            seed=candidate_seed(self.seed, proposal.id),
            phase=proposal.phase,
            parent_id=proposal.parent_id,
            state=self.strategy.state_dict(),
        )
        self._phases[proposal.id] = proposal.phase

    def _prescreened(self, phase: str, rung: int) -> bool:
        return bool(self.prescreen) and phase == "initial" and rung == 0

    def _groups(self) -> dict[int, str] | None:
        """Rung 0 ranks pre-screened candidates among themselves (another surrogate, another scale)."""
        if not self.prescreen:
            return None
        return {cid: "prescreen" if phase == "initial" else "" for cid, phase in self._phases.items()}

    def _extras(self, rung: int, prescreened: bool) -> list[list[str]]:
        """Overrides of every objective setting at ``rung``. Rung 0 is the search's own surrogate:
        a setting's and the pre-screen's overrides apply over the rung's budget; at a higher rung
        the rung's budget applies over every setting's (else a promotion would train no longer)."""
        budget = self.fidelity.overrides(rung)
        if rung == 0:
            tail = self.prescreen if prescreened else []
            return [[*budget, *setting, *tail] for setting in self.objective.settings]
        return [[*setting, *budget] for setting in self.objective.settings]

    def _runs(self, rung: int) -> int:
        return self.objective.runs * self.fidelity.runs[rung]

    def _candidate_task(self, row: CandidateRow, rung: int) -> Task:
        folder = self.run_dir / "candidates" / f"{row.id:06d}"
        if rung:
            folder = folder / f"rung_{rung}"
        folder.mkdir(parents=True, exist_ok=True)
        runs = self._runs(rung)
        extras = self._extras(rung, self._prescreened(row.phase, rung))
        seeds = training_seeds(row.seed if rung == 0 else rung_seed(self.seed, rung), len(extras), runs)
        data_seeds = self._data_seeds(rung, len(extras), runs)
        loss = genome_loss_config(f"candidate_{row.id}", row.genome, self.label_smoothing)
        info = {"id": row.id, "parent": row.parent_id, "phase": row.phase, "dir": str(folder), "rung": rung}
        configs = []
        for i, seed in enumerate(seeds):
            config = self.composer.training(loss, seed, extras[i // runs], info, data_seeds[i])
            # Each candidate's folder holds its complete configs: `train.py --config-path <folder>
            # --config-name config` retrains exactly this candidate (config_<i>: further trainings).
            name = "config.yaml" if i == 0 else f"config_{i}.yaml"
            (folder / name).write_text(yaml.dump(config, Dumper=_Dumper, sort_keys=False))
            configs.append(config)
        name = f"candidate {row.id}" + (f" at rung {rung}" if rung else "")
        return Task(("candidate", row.id, rung), configs, name, str(folder), self.objective.labels(), runs)

    def _data_seeds(self, rung: int, settings: int, runs: int) -> list[int]:
        """The batch order and augmentation of a rung's trainings, the same for every loss: at
        rung 0 each candidate keeps its own init seed but all see the same batches (common random
        numbers for the ranking, and what lets candidates train together in one pass)."""
        return training_seeds(rung_seed(self.seed, rung), settings, runs)

    def _candidate_result(self, task: Task, result: Fitness) -> None:
        _, candidate_id, rung = task.key
        row = self.journal.candidate(candidate_id)
        result = self._scored(result, rung, self._prescreened(row.phase, rung))
        fitness = result.fitness if result.ok else None
        if rung == 0:
            self.strategy.tell(candidate_id, fitness)
        else:
            self.strategy.promoted(candidate_id, rung, fitness)
        self.journal.finish_candidate(candidate_id, result, self.strategy.state_dict(), rung=rung)
        finished = self.journal.candidate(candidate_id)
        if rung == 0 and self.progress is not None:
            self.progress.add(finished.fitness)
        self._track(finished, result, rung)
        if self.on_result is not None:
            self.on_result(finished, result, rung)

    def _scored(self, result: Fitness, rung: int, prescreened: bool) -> Fitness:
        if self.objective.combine != "wins":
            return result
        name = self.reference_name + ("@prescreen" if prescreened else "")
        reference = self.journal.reference(name, rung)
        return self.objective.score(result, None if reference is None else reference.parts)

    # ------------------------------------------------------------------ reference loss
    def _reference_loss(self) -> dict[str, Any]:
        return OmegaConf.to_container(self.cfg.loss, resolve=True)  # type: ignore[return-value]

    def _queue_references(self) -> None:
        """The reference loss (``loss=``, cross-entropy by default) trained like a candidate at every
        rung, and on the pre-screen when there is one. At rung 0 ``driver.reference_runs`` > 1 adds
        trainings with other seeds (``<name>#2``, ...): its band in reports."""
        wanted: list[tuple[str, int, int, bool]] = []  # name, rung, seed, prescreened
        for run in range(max(1, self.settings.reference_runs)):
            name = self.reference_name + (f"#{run + 1}" if run else "")
            wanted.append((name, 0, reference_seed(self.seed, run), False))
        if self.prescreen:
            wanted.append((self.reference_name + "@prescreen", 0, reference_seed(self.seed), True))
        for rung in range(1, self.fidelity.top + 1):
            wanted.append((self.reference_name, rung, rung_seed(self.seed, rung), False))
        loss = self._reference_loss()
        for name, rung, seed, prescreened in wanted:
            if self.journal.reference(name, rung) is not None:
                continue
            extras = self._extras(rung, prescreened)
            runs = self._runs(rung)
            seeds = training_seeds(seed, len(extras), runs)
            data = self._data_seeds(rung, len(extras), runs)
            configs = [
                self.composer.training(loss, s, extras[i // runs], None, data[i]) for i, s in enumerate(seeds)
            ]
            key = ("reference", name, rung, seed)
            label = f"reference {name}" + (f" at rung {rung}" if rung else "")
            self._references.append(Task(key, configs, label, None, self.objective.labels(), runs))
            self._outstanding_references.add(key)

    def _reference_result(self, task: Task, result: Fitness) -> None:
        _, name, rung, seed = task.key
        if result.stop_reason in (StopReason.ERROR, StopReason.WORKER):
            # Cross-entropy that cannot train means every candidate would fail the same way: a
            # configuration error, not a search result. Nothing is marked done; fix and re-run.
            raise LossevoError(
                f"the reference loss {name} could not be trained ({result.stop_reason}: {result.detail}); "
                "a setting that breaks every training is a configuration error: fix it and run again"
            )
        if self.objective.combine == "wins":
            if not result.ok:
                raise LossevoError(
                    f"the reference loss {name} failed ({result.stop_reason}: {result.detail}), so "
                    "objective.combine=wins has nothing to count wins against; fix the setting or the loss"
                )
            result = self.objective.score(result, result.parts)  # the reference scores 0.5 against itself
        equation = str(getattr(build(self.cfg.loss, "loss"), "equation", name))
        self.journal.add_reference(name, rung, equation, seed, result, task.configs[0].get("data_seed"))
        self._outstanding_references.discard(task.key)
        if rung == 0 and name == self.reference_name and self.progress is not None:
            self.progress.reference = result.fitness
        suffix = f"/rung{rung}" if rung else ""
        self.tracker.summary({f"baseline/{name}{suffix}": result.fitness})
        log.info(
            "%s: fitness %s (%s, %.1fs)", task.name, _fmt(result.fitness), result.stop_reason, result.seconds
        )

    # ------------------------------------------------------------------ verdict
    def _validation_runs(self) -> int:
        if self.validate.runs is not None:
            return int(self.validate.runs)
        import torch

        gpu = torch.cuda.is_available() and str(self.cfg.trainer.get("accelerator", "auto")) != "cpu"
        return 5 if gpu else 3

    def validation_plan(self) -> tuple[Finalist, list[Finalist], int, int]:
        """The reference, the finalists, the validation budget (steps) and runs per loss."""
        k = int(self.validate.top_k if self.validate.top_k is not None else self.cfg.get("top_k", 3))
        steps = int(self.validate.steps or self.fidelity.steps[-1])
        equation = str(getattr(build(self.cfg.loss, "loss"), "equation", self.reference_name))
        reference = Finalist(self.reference_name, None, equation, None, None, None)
        return reference, finalists(self.journal, k), steps, self._validation_runs()

    def _verdict(self, executor: Executor) -> Verdict | None:
        reference, chosen, steps, runs = self.validation_plan()
        if runs < 1:
            return None
        Verdict.save_plan(self.journal, reference, chosen, steps, runs, self.validate.alpha)
        done = {(r.loss, r.run) for r in self.journal.validations(steps)}
        extras = [validation_overrides(list(setting), steps) for setting in self.objective.settings]
        seeds = validation_seeds(self.seed, len(extras), runs)
        queue: deque[Task] = deque()
        losses = [
            (
                f,
                self._reference_loss()
                if f.genome is None
                else genome_loss_config(f.name, f.genome, self.label_smoothing),
            )
            for f in [*chosen, reference]
        ]
        for run in range(runs):  # run-major: the losses of one run share its seeds (one pass)
            for f, loss in losses:
                if (f.name, run) in done:
                    continue
                configs = [self.composer.training(loss, seeds[s * runs + run], extra)
                           for s, extra in enumerate(extras)]  # fmt: skip
                key = ("validation", f.name, f.candidate_id, steps, run, seeds[run])
                queue.append(Task(key, configs, f"validation of {f.name} (run {run + 1})", None,
                                  self.objective.labels(), 1))  # fmt: skip
        if queue:
            log.info("verdict: %d validation trainings (%d losses x %d runs at %s steps)", len(queue),
                     len(chosen) + 1, runs, f"{steps:,}")  # fmt: skip

        def next_task() -> Task | None:
            return self._submitted(queue.popleft()) if queue else None

        def on_result(task: Task, result: Fitness) -> None:
            _, name, candidate_id, budget, run, seed = task.key
            if self._retried(task, result, queue):
                return
            self.journal.add_validation(name, candidate_id, budget, run, seed, result)
            log.info(
                "%s: %s", task.name, _fmt(result.fitness) if result.ok else f"failed ({result.stop_reason})"
            )

        run_tasks(executor, next_task, on_result, self.group)
        return Verdict.from_journal(self.journal, reference, chosen, steps, runs, self.validate.alpha)

    # ------------------------------------------------------------------ tracking and results
    def _track(self, row: CandidateRow, result: Fitness, rung: int) -> None:
        if rung:
            self.tracker.log({f"rung{rung}/candidate": row.id, f"rung{rung}/fitness": result.fitness})
            return
        best = self.journal.best(1)
        reference = self.journal.reference(self.reference_name)
        data = {
            "candidate/id": row.id,
            "candidate/fitness": result.fitness,
            "candidate/status": row.status.value,
            "candidate/stop_reason": None if row.stop_reason is None else row.stop_reason.value,
            "candidate/equation": row.equation,
            "candidate/seconds": result.seconds,
            "search/evaluated": self.journal.count(FINISHED),
            "search/best_fitness": best[0].fitness if best else None,
            "search/reference_fitness": None if reference is None else reference.fitness,
        }
        self.tracker.log(data, step=row.id)

    def _finish(self, verdict: Verdict | None) -> SearchOutcome:
        k = int(self.cfg.get("top_k", 3))
        if verdict is not None and verdict.losses:
            ordered = [v for v in verdict.losses if v.values][:k]
            chosen = [v.finalist for v in ordered]
            notes = [
                f"validated {v.mean:.4f} over {len(v.values)} runs at {verdict.steps:,} steps"
                for v in ordered
            ]
        else:
            chosen = finalists(self.journal, k)
            notes = [f"rung {f.rung} fitness {f.rung_fitness:.4f}" for f in chosen]
        best = [self.journal.candidate(f.candidate_id) for f in chosen]  # type: ignore[arg-type]
        paths = write_loss_configs(best, self.run_dir / "conf" / "loss", notes, self.label_smoothing)
        files: dict[str, Path] = {}
        if verdict is not None:
            files = verdict.write(self.run_dir)
            verdict.track(self.tracker)
        rows = [
            [r.id, r.parent_id, r.phase, r.status.value, r.fitness, r.stop_reason and r.stop_reason.value,
             r.equation, r.seconds]
            for r in self.journal.candidates()
        ]  # fmt: skip
        self.tracker.table(
            "candidates",
            ["id", "parent", "phase", "status", "fitness", "stop_reason", "equation", "seconds"],
            rows,
        )
        if self.tracker.active and best:  # phenotypes for the dashboard, only when anything is logged
            from lossevo.analysis.evolution_report import phenotype_files, track_top_candidates

            reference = build(self.cfg.loss, "loss")
            images = phenotype_files(best, self.reference_name, reference, self.run_dir / "phenotypes")
            track_top_candidates(self.tracker, best, images)
        self.tracker.summary(
            {
                "best_fitness": best[0].fitness if best else None,
                "best_equation": best[0].equation if best else None,
                **{f"strategy/{k}": v for k, v in self.strategy.summary().items()},
            }
        )
        return SearchOutcome(
            run_dir=self.run_dir,
            evaluated=self.journal.count(FINISHED),
            failed=self.journal.count(Status.FAILED),
            promotions=sum(1 for r in self.journal.rungs() if r.rung > 0),
            best=best,
            finalists=chosen,
            reference=self.journal.reference(self.reference_name),
            top_reference=max(
                (r for r in self.journal.references() if r.name == self.reference_name),
                key=lambda r: r.rung,
                default=None,
            ),
            loss_configs=paths,
            verdict=verdict,
            files=files,
        )


_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def write_loss_configs(
    best: Sequence[CandidateRow], folder: Path, notes: Sequence[str] = (), label_smoothing: float = 0.0
) -> list[Path]:
    """Write the best genomes as loss configs ``best_<rank>.yaml`` that ``train.py`` accepts (with the
    label smoothing they were searched with, so they train as evaluated)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("best_*.yaml"):  # a resumed search may now rank fewer or others
        stale.unlink()
    paths = []
    for rank, row in enumerate(best, start=1):
        genome = genome_from_dict(row.genome)
        node = genome_loss_config(f"best_{rank}", genome.to_dict(), label_smoothing)
        note = notes[rank - 1] if rank - 1 < len(notes) else f"fitness {row.fitness:.4f}"
        header = f"# Rank {rank} of the search: candidate {row.id}, {note}\n# {row.equation}\n"
        path = folder / f"best_{rank}.yaml"
        path.write_text(header + OmegaConf.to_yaml(OmegaConf.create(node)))
        paths.append(path)
    return paths


def _int(value: Any, key: str) -> int:
    """An integer setting; a fraction or a word is refused rather than truncated."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LossevoError(f"{key} must be an integer, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise LossevoError(f"{key} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise LossevoError(f"{key} must be an integer, got {value!r}")
    return int(number)


def _positive_int(value: Any, key: str) -> int:
    number = _int(value, key)
    if number < 1:
        raise LossevoError(f"{key} must be >= 1, got {number}")
    return number


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
