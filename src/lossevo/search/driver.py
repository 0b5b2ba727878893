"""The search loop: strategy -> tasks -> executor -> journal -> strategy, then the verdict.

Every step is journalled (see :mod:`lossevo.store.journal`), so re-running with the same run
folder resumes: finished trainings are never re-run, unfinished ones are evaluated again with
their recorded seeds, and the strategy continues from the state saved with the last journal write.

Everything the search trains is a :class:`~lossevo.execution.tasks.Task` handed to the run's
executor through :func:`~lossevo.execution.executors.run_tasks`: the reference loss at every rung,
candidates at rung 0, promotions (:mod:`lossevo.search.fidelity`), and the verdict's validation
runs (:mod:`lossevo.verdict.phase`). A free executor slot goes, in this order, to the reference
loss, to work that must be redone (a retry, an evaluation interrupted by a kill), to a
promotion, and only then to a new candidate from the strategy. A task's key
(:mod:`lossevo.search.keys`) says what its result is for.

What the strategy is told: a candidate's rung-0 result, as soon as it arrives (``tell``), so a
steady-state search never waits for long trainings; a promoted candidate's later results are
reported with ``promoted(id, rung, fitness)``, which regularized evolution uses to rank its
population by (highest rung reached, result there); generational strategies have closed that
generation and keep their rung-0 ranking. Scales of different rungs are never mixed in one number.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf

from lossevo.config import build, plain, resolved
from lossevo.config.composer import ConfigComposer
from lossevo.config.settings import SearchSettings
from lossevo.errors import GenomeError, LossevoError
from lossevo.execution.executors import executor_from, run_tasks
from lossevo.execution.objectives import Objective, training_seeds
from lossevo.execution.retries import Retries
from lossevo.execution.tasks import Task
from lossevo.genome import Genome, genome_from_dict
from lossevo.genome.graph import same_ops
from lossevo.losses import build_loss, genome_loss_config
from lossevo.results import FINISHED, Fitness, StopReason
from lossevo.search.fidelity import Fidelity, rung_seed
from lossevo.search.keys import CandidateKey, ReferenceKey
from lossevo.search.outputs import YAML_DUMPER, SearchOutcome, write_outputs
from lossevo.search.strategies.base import Proposal, Strategy
from lossevo.store.identity import check_identity, identity
from lossevo.store.journal import CandidateRow, Journal, edited_journal
from lossevo.tracking.progress import SearchProgress
from lossevo.tracking.tracker import Tracker, group_for
from lossevo.verdict.phase import ValidationPhase
from lossevo.verdict.plan import ValidationPlan, on_gpu
from lossevo.verdict.planning import VerdictPlanner
from lossevo.verdict.rows import Verdict

log = logging.getLogger("lossevo")

# Keys of the search node the driver reads itself (not strategy arguments).
DRIVER_SEARCH_KEYS = ("budget", "prescreen", "fidelity")
# Keys that may change when a search is resumed: how much is trained and where, never how.
FREE_KEYS = ("search.budget", "top_k", "driver", "validate")  # the verdict keeps rows per budget


def build_strategy(cfg: DictConfig) -> Strategy:
    """The search strategy of an ``evolve`` config, on its space, seeded from the run's seed."""
    space = build(cfg.space, "space")
    search = resolved(cfg.search)  # reads root keys (integrity, classes)
    node = {k: v for k, v in search.items() if k not in DRIVER_SEARCH_KEYS}
    return build(OmegaConf.create(node), "search", space=space, seed=int(cfg.seed))


def candidate_seed(run_seed: int, candidate_id: int) -> int:
    """The training seed of one candidate, derived from the run's seed."""
    return int(np.random.SeedSequence([run_seed, candidate_id]).generate_state(1)[0])


def reference_seed(run_seed: int, run: int = 0) -> int:
    """The reference loss's rung-0 seed of its ``run``-th training (run 0 is the reference)."""
    key = [run_seed, 0xBA5E] + ([run] if run else [])
    return int(np.random.SeedSequence(key).generate_state(1)[0])


class Driver:
    """Runs one search in ``run_dir`` from a composed ``evolve`` config."""

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: Path,
        composer: ConfigComposer,
        on_result: Callable[[CandidateRow, Fitness, int], None] | None = None,
        progress: SearchProgress | None = None,
        sweep_root: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.composer = composer
        self.on_result = on_result
        self.progress = progress
        self.settings = SearchSettings.from_config(cfg)
        self.seed = self.settings.seed
        self.objective = Objective.from_config(cfg.get("objective"))
        self.fidelity = Fidelity.from_settings(self.settings.fidelity, self.settings.surrogate_steps)
        self.prescreen = self.settings.prescreen
        self.reference_name = self.settings.reference_name
        self.retries = Retries(self.settings.driver)
        self.strategy = build_strategy(cfg)  # a bad search config fails before the folder is touched
        # likewise a baseline that is not a loss, or a verdict setting that would test on other images
        self.planner = VerdictPlanner(self.settings, composer, self._reference_loss(), sweep_root)
        run_dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(run_dir)
        try:
            self.journal.lock()
            if self.journal.created and any((run_dir / "candidates").glob("*")):
                raise LossevoError(
                    f"{run_dir} holds candidate folders but its journal is new or empty: the journal was "
                    "lost; restore journal.sqlite, or start a new search in another folder"
                )
            check_identity(
                self.journal,
                identity(cfg, FREE_KEYS),
                "search",
                fresh=self._nothing_recorded(),
                same=same_ops,
            )
            self._genomes = {row.id: self._parse(row) for row in self.journal.candidates()}
            state = self.journal.strategy_state()
            if state is not None:
                try:
                    self.strategy.load_state_dict(state)
                except (GenomeError, KeyError, TypeError, ValueError, IndexError) as err:
                    raise LossevoError(
                        f"{run_dir}/journal.sqlite: the strategy's saved state is not one a search writes "
                        f"({type(err).__name__}: {str(err)[:200]}); nothing was run: restore the journal "
                        "from a copy, or start the search in another folder"
                    ) from None
        except BaseException:
            self.journal.close()
            raise
        self._phases = {row.id: row.phase for row in self.journal.candidates()}
        self._warn_about_lost_work()
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
        self._outstanding_references: set[ReferenceKey] = set()

    def _parse(self, row: CandidateRow) -> Genome:
        """A journal row's genome as a :class:`Genome`: every row is parsed when the journal opens,
        before anything trains, and only parsed genomes reach a config (losses/nodes.py)."""
        try:
            if not _PHASE.fullmatch(str(row.phase)):  # it names task folders, logs and W&B keys
                raise GenomeError(f"its phase {str(row.phase)[:40]!r} is not a plain name")
            return genome_from_dict(row.genome, validate=False)
        except GenomeError as err:
            raise LossevoError(edited_journal(self.run_dir, row.id, err)) from None

    def _warn_about_lost_work(self) -> None:
        """A resume that finds less than the folder shows says so: candidate folders the journal has
        no row for (a journal restored from an older copy, or its write-ahead log lost) are trained
        again; finished candidates whose folder was deleted keep their results."""
        folders = {int(p.name) for p in (self.run_dir / "candidates").glob("[0-9]*") if p.name.isdigit()}
        known = set(self._phases)
        finished = {row.id for row in self.journal.candidates(FINISHED)}
        if lost := sorted(folders - known):
            log.warning(
                "the journal has no row for %d candidate%s whose folder exists (%s): it is older "
                "than the run folder (restored, or its write-ahead log lost); they will be "
                "proposed and trained again",
                len(lost),
                "" if len(lost) == 1 else "s",
                _ids(lost),
            )
        if gone := sorted(finished - folders):
            log.warning(
                "%d finished candidate folder%s deleted (%s): the journal keeps their results and "
                "nothing is trained again; their config files are not rewritten",
                len(gone),
                " was" if len(gone) == 1 else "s were",
                _ids(gone),
            )

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
                self._ready.append(
                    self._candidate_task(self.journal.candidate(promotion.candidate_id), promotion.rung)
                )
            run_tasks(executor, self._next_task, self._on_result, self.settings.group)
            if self.journal.count() < self.settings.budget:
                raise RuntimeError("the strategy waits for results, but no evaluation is outstanding")
            plan = self.validation_plan()
            verdict: Verdict | None = None
            if plan.runs >= 1:
                plan.save(self.journal)
                phase = ValidationPhase(
                    plan,
                    self.journal,
                    self.composer,
                    self.objective,
                    self.seed,
                    self.settings.label_smoothing,
                    self.retries,
                    self.progress,
                )
                verdict = phase.run(executor, self.settings.group)
            outcome = write_outputs(
                self.run_dir,
                self.journal,
                self.tracker,
                self.settings,
                verdict,
                self.strategy.summary(),
                self.cfg.loss,
            )
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
                log.info(
                    "candidate %d promoted to rung %d (%s steps)",
                    candidate_id,
                    rung,
                    f"{self.fidelity.steps[rung]:,}",
                )
                return self._submitted(self._candidate_task(row, rung))
        if self.journal.count() >= self.settings.budget:
            return None
        proposal = self.strategy.ask()
        if proposal is None:
            return None  # a generational strategy waits for its outstanding results
        self._record(proposal)
        return self._submitted(self._candidate_task(self.journal.candidate(proposal.id), 0))

    def _submitted(self, task: Task) -> Task:
        self.retries.submitted(task)
        if isinstance(task.key, CandidateKey):
            first = task.configs[0]
            self.journal.mark_running(
                task.key.candidate_id, task.key.rung, first["seed"], first.get("data_seed")
            )
        return task

    def _on_result(self, task: Task, result: Fitness) -> None:
        if self.retries.retried(task, result, self._ready):
            return
        match task.key:
            case ReferenceKey() as key:
                self._reference_result(task, key, result)
            case CandidateKey() as key:
                self._candidate_result(key, result)
            case other:
                raise TypeError(f"the search has no task {other!r}")

    # ------------------------------------------------------------------ candidates
    def _record(self, proposal: Proposal) -> None:
        genome = proposal.genome
        self._genomes[proposal.id] = genome
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
        loss = genome_loss_config(f"candidate_{row.id}", self._genomes[row.id], self.settings.label_smoothing)
        info = {"id": row.id, "parent": row.parent_id, "phase": row.phase, "dir": str(folder), "rung": rung}
        configs = []
        for i, seed in enumerate(seeds):
            config = self.composer.training(loss, seed, extras[i // runs], info, data_seeds[i])
            # Each candidate's folder holds its complete configs: `train.py --config-path <folder>
            # --config-name config` retrains exactly this candidate (config_<i>: further trainings).
            name = "config.yaml" if i == 0 else f"config_{i}.yaml"
            (folder / name).write_text(yaml.dump(config, Dumper=YAML_DUMPER, sort_keys=False))
            configs.append(config)
        name = f"candidate {row.id}" + (f" at rung {rung}" if rung else "")
        key = CandidateKey(row.id, rung)
        return Task(key, configs, name, str(folder), self.objective.labels(), runs)

    def _data_seeds(self, rung: int, settings: int, runs: int) -> list[int]:
        """The batch order and augmentation of a rung's trainings, the same for every loss: at
        rung 0 each candidate keeps its own init seed but all see the same batches (common random
        numbers for the ranking, and what lets candidates train together in one pass)."""
        return training_seeds(rung_seed(self.seed, rung), settings, runs)

    def _candidate_result(self, key: CandidateKey, result: Fitness) -> None:
        candidate_id, rung = key.candidate_id, key.rung
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

    # ------------------------------------------------------------------ reference loss
    def _reference_loss(self) -> dict[str, Any]:
        return resolved(self.cfg.loss)

    def _queue_references(self) -> None:
        """The reference loss (``loss=``, cross-entropy by default) trained like a candidate at every
        rung, and on the pre-screen when there is one. At rung 0 ``driver.reference_runs`` > 1 adds
        trainings with other seeds (``<name>#2``, ...): its band in reports."""
        wanted: list[tuple[str, int, int, bool]] = []  # name, rung, seed, prescreened
        for run in range(max(1, self.settings.driver.reference_runs)):
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
            key = ReferenceKey(name, rung, seed)
            label = f"reference {name}" + (f" at rung {rung}" if rung else "")
            self._references.append(Task(key, configs, label, None, self.objective.labels(), runs))
            self._outstanding_references.add(key)

    def _reference_result(self, task: Task, key: ReferenceKey, result: Fitness) -> None:
        name, rung = key.name, key.rung
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
        equation = self._reference_equation()
        self.journal.add_reference(name, rung, equation, key.seed, result, task.configs[0].get("data_seed"))
        self._outstanding_references.discard(key)
        if rung == 0 and name == self.reference_name and self.progress is not None:
            self.progress.reference = result.fitness
        suffix = f"/rung{rung}" if rung else ""
        self.tracker.summary({f"baseline/{name}{suffix}": result.fitness})
        shown = "-" if result.fitness is None else f"{result.fitness:.4f}"
        log.info("%s: fitness %s (%s, %.1fs)", task.name, shown, result.stop_reason, result.seconds)

    def _reference_equation(self) -> str:
        return str(getattr(build_loss(self.cfg.loss, "loss"), "equation", self.reference_name))

    # ------------------------------------------------------------------ verdict
    def validation_plan(self) -> ValidationPlan:
        """What the verdict validates now (lossevo.verdict.planning)."""
        gpu = on_gpu(str(self.cfg.trainer.get("accelerator", "auto")))
        prescreened = (
            [cid for cid, phase in self._phases.items() if phase == "initial"] if self.prescreen else []
        )
        return self.planner.plan(self.journal, self.fidelity.steps[-1], gpu, prescreened)


_PHASE = re.compile(r"[A-Za-z0-9_]{1,40}")  # initial, evolve, random, generation_3


def _ids(ids: list[int]) -> str:
    shown = ", ".join(f"{i:06d}" for i in ids[:5])
    return shown + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
