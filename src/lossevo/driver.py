"""The search loop: strategy -> candidate config -> surrogate -> journal -> strategy.

Every step is journalled (see :mod:`lossevo.journal`), so re-running with the same run folder
resumes: finished candidates are never re-run, unfinished ones are evaluated again with their
recorded seed, and the strategy continues from the state saved with the last journal write.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose
from omegaconf import DictConfig, OmegaConf, open_dict

from lossevo.config import build, plain, without_hydra
from lossevo.errors import LossevoError
from lossevo.executors import Executor, Task, surrogate_for
from lossevo.genome import genome_from_dict
from lossevo.journal import CandidateRow, Journal
from lossevo.strategies.base import Strategy
from lossevo.surrogate import Fitness, Job, Surrogate
from lossevo.tracking import Tracker

log = logging.getLogger("lossevo")

# Settings that define what a search measures: resuming with other values would mix results.
IDENTITY_KEYS = ("dataset", "augment", "model", "space", "surrogate", "seed", "loss")
SEARCH_KEYS_FREE_TO_CHANGE = ("budget",)


def candidate_seed(run_seed: int, candidate_id: int) -> int:
    """The training seed of one candidate, derived from the run's seed."""
    return int(np.random.SeedSequence([run_seed, candidate_id]).generate_state(1)[0])


def baseline_seed(run_seed: int) -> int:
    return int(np.random.SeedSequence([run_seed, 0xBA5E]).generate_state(1)[0])


@dataclass
class SearchOutcome:
    run_dir: Path
    evaluated: int
    failed: int
    best: list[CandidateRow]
    baseline: dict[str, Any] | None
    loss_configs: list[Path]


class CandidateConfigs:
    """Composes one full config per candidate.

    The structural part is composed by Hydra from the run's own overrides plus ``loss=genome``
    (once per distinct override set: a Hydra compose costs ~0.2 s); each candidate's seed, genome
    and output folder are then merged in, giving every candidate a complete config of its own.
    """

    def __init__(self, config_name: str | None, overrides: Sequence[str], fallback: DictConfig) -> None:
        self.config_name = config_name
        self.overrides = list(overrides)
        self.fallback = fallback
        self._templates: dict[tuple[str, ...], DictConfig] = {}

    def template(self, extra: Sequence[str] = ()) -> DictConfig:
        key = tuple(self.overrides) + tuple(extra)
        if key not in self._templates:
            if self.config_name is None:
                base = without_hydra(self.fallback)
                with open_dict(base):
                    base.loss = OmegaConf.create(
                        {"_target_": "lossevo.losses.genome_loss", "name": "genome", "genome": None}
                    )
            else:
                base = compose(
                    config_name=self.config_name, overrides=[*self.overrides, "loss=genome", *extra]
                )
            self._templates[key] = base
        return self._templates[key]

    def for_candidate(self, row: CandidateRow, run_dir: Path) -> DictConfig:
        """The config of one journalled candidate (its own output folder under ``run_dir``)."""
        return self.build(
            row.id,
            row.seed,
            row.genome,
            run_dir / "candidates" / f"{row.id:06d}",
            parent=row.parent_id,
            phase=row.phase,
        )

    def build(
        self,
        candidate_id: int,
        seed: int,
        genome: dict[str, Any],
        folder: Path,
        parent: int | None = None,
        phase: str = "",
    ) -> DictConfig:
        return OmegaConf.merge(
            self.template(),
            {
                "seed": seed,
                "loss": {"genome": genome, "name": f"candidate_{candidate_id}"},
                "candidate": {"id": candidate_id, "parent": parent, "phase": phase, "dir": str(folder)},
            },
        )


class Driver:
    """Runs one search in ``run_dir`` from a composed ``evolve`` config."""

    def __init__(
        self,
        cfg: DictConfig,
        run_dir: Path,
        configs: CandidateConfigs,
        on_candidate: Callable[[CandidateRow, Fitness], None] | None = None,
    ) -> None:
        self.cfg = cfg
        self.run_dir = run_dir
        self.configs = configs
        self.on_candidate = on_candidate
        self.budget = int(cfg.search.budget)
        settings = cfg.get("driver") or {}
        self.retries = int(settings.get("retries", 1))
        self.retry_on = set(settings.get("retry_on", ["error", "worker"]))
        if self.budget < 1:
            raise LossevoError(f"search.budget must be >= 1, got {self.budget}")
        self.journal = Journal(run_dir)
        self._check_resume(cfg)
        self.strategy = self._build_strategy(cfg)
        state = self.journal.strategy_state()
        if state is not None:
            self.strategy.load_state_dict(state)
        self._surrogates: dict[str, Surrogate] = {}
        self.tracker = Tracker(
            cfg.get("logger"),
            run_dir,
            group=run_dir.name if run_dir.name not in ("", ".") else "lossevo",
            job_type="search",
            name=f"search-{run_dir.name}",
            config=plain(cfg),
        )

    # ------------------------------------------------------------------ set-up
    def _check_resume(self, cfg: DictConfig) -> None:
        identity = {
            k: OmegaConf.to_container(cfg[k], resolve=True)
            if isinstance(cfg.get(k), DictConfig)
            else cfg.get(k)
            for k in IDENTITY_KEYS
        }
        search = OmegaConf.to_container(cfg.search, resolve=True)
        for key in SEARCH_KEYS_FREE_TO_CHANGE:
            search.pop(key, None)  # type: ignore[union-attr]
        identity["search"] = search
        stored = self.journal.get_meta("identity")
        if stored is None:
            self.journal.set_meta("identity", identity)
            return
        changed = [k for k in sorted(set(stored) | set(identity)) if stored.get(k) != identity.get(k)]
        if changed:
            raise LossevoError(
                f"{self.run_dir} holds a search with other settings ({', '.join(changed)} differ); "
                "resume it with the same overrides, or start a new search with another hydra.run.dir"
            )

    def _build_strategy(self, cfg: DictConfig) -> Strategy:
        space = build(cfg.space, "space")
        node = OmegaConf.masked_copy(cfg.search, [k for k in cfg.search if k != "budget"])
        return build(node, "search", space=space, seed=int(cfg.seed))

    def surrogate(self, cfg: DictConfig) -> Surrogate:
        """The surrogate for a candidate config (shared by candidates with the same setting)."""
        return surrogate_for(cfg)

    # ------------------------------------------------------------------ loop
    def run(self) -> SearchOutcome:
        executor = build(
            self.cfg.get("executor") or {"_target_": "lossevo.executors.InlineExecutor"}, "executor"
        )
        try:
            baseline = self._baseline()
            for row in self.journal.unfinished():  # were running when the last run stopped
                self._submit(executor, row)
            while True:
                while executor.busy < executor.capacity and self.journal.count() < self.budget:
                    proposal = self.strategy.ask()
                    if proposal is None:
                        break  # a generational strategy waits for its outstanding results
                    self._record(proposal)
                    self._submit(executor, self.journal.candidate(proposal.id))
                if not executor.busy:
                    if self.journal.count() >= self.budget:
                        break
                    raise RuntimeError("the strategy waits for results, but no evaluation is outstanding")
                for candidate_id, fitness in executor.wait():
                    self._result(executor, candidate_id, Fitness(**fitness))
            outcome = self._finish(baseline)
        finally:
            executor.close()
            self.tracker.finish()
            self.journal.close()
        return outcome

    def _record(self, proposal: Any) -> None:
        genome = proposal.genome
        self.journal.add_candidate(
            candidate_id=proposal.id,
            genome=genome.to_dict(),
            key=genome.key(),
            equation=genome.equation(),
            latex=genome.latex(),
            seed=candidate_seed(int(self.cfg.seed), proposal.id),
            phase=proposal.phase,
            parent_id=proposal.parent_id,
            state=self.strategy.state_dict(),
        )

    def _baseline(self) -> dict[str, Any] | None:
        name = str(self.cfg.loss.get("name", "baseline"))
        done = self.journal.baseline(name)
        if done is not None:
            return done
        surrogate = self.surrogate(self.cfg)
        loss = build(self.cfg.loss, "loss")
        seed = baseline_seed(int(self.cfg.seed))
        log.info("reference loss %s on the same surrogate (%s)", name, surrogate.data.summary())
        result = surrogate.train(Job(loss, seed, name))
        self.journal.add_baseline(name, getattr(loss, "equation", name), seed, result.to_dict())
        self.tracker.summary({f"baseline/{name}": result.fitness})
        log.info(
            "reference %s: fitness %s (%s, %.1fs)",
            name,
            _fmt(result.fitness),
            result.stop_reason,
            result.seconds,
        )
        return self.journal.baseline(name)

    def _submit(self, executor: Executor, row: CandidateRow) -> None:
        cfg = self.configs.for_candidate(row, self.run_dir)
        # Each candidate's folder holds its complete config: `train.py --config-path <folder>
        # --config-name config` retrains exactly this candidate.
        folder = Path(cfg.candidate.dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        self.journal.mark_running(row.id)
        config = OmegaConf.to_container(cfg, resolve=True)
        executor.submit(Task(row.id, config, int(cfg.seed), f"candidate_{row.id}", str(folder)))  # type: ignore[arg-type]

    def _result(self, executor: Executor, candidate_id: int, result: Fitness) -> None:
        row = self.journal.candidate(candidate_id)
        if not result.ok and result.stop_reason in self.retry_on and row.attempts <= self.retries:
            log.warning(
                "candidate %d failed (%s: %s); retrying", candidate_id, result.stop_reason, result.detail
            )
            self._submit(executor, row)
            return
        self.strategy.tell(candidate_id, result.fitness if result.ok else None)
        self.journal.finish_candidate(
            candidate_id,
            status=result.status,
            fitness=result.fitness,
            stop_reason=result.stop_reason,
            detail=result.detail,
            steps=result.steps,
            train_acc=result.train_acc,
            history=result.history,
            seconds=result.seconds,
            state=self.strategy.state_dict(),
        )
        finished = self.journal.candidate(candidate_id)
        self._track(finished, result)
        if self.on_candidate is not None:
            self.on_candidate(finished, result)

    def _track(self, row: CandidateRow, result: Fitness) -> None:
        best = self.journal.best(1)
        data = {
            "candidate/id": row.id,
            "candidate/fitness": result.fitness,
            "candidate/status": row.status,
            "candidate/stop_reason": row.stop_reason,
            "candidate/equation": row.equation,
            "candidate/seconds": result.seconds,
            "search/evaluated": self.journal.count(("done", "failed")),
            "search/best_fitness": best[0].fitness if best else None,
        }
        self.tracker.log(data, step=row.id)

    def _finish(self, baseline: dict[str, Any] | None) -> SearchOutcome:
        best = self.journal.best(int(self.cfg.get("top_k", 3)))
        paths = write_loss_configs(best, self.run_dir / "conf" / "loss")
        rows = [
            [r.id, r.parent_id, r.phase, r.status, r.fitness, r.stop_reason, r.equation, r.seconds]
            for r in self.journal.candidates()
        ]
        self.tracker.table(
            "candidates",
            ["id", "parent", "phase", "status", "fitness", "stop_reason", "equation", "seconds"],
            rows,
        )
        self.tracker.summary(
            {
                "best_fitness": best[0].fitness if best else None,
                "best_equation": best[0].equation if best else None,
                **{f"strategy/{k}": v for k, v in self.strategy.summary().items()},
            }
        )
        return SearchOutcome(
            run_dir=self.run_dir,
            evaluated=self.journal.count(("done", "failed")),
            failed=self.journal.count("failed"),
            best=best,
            baseline=baseline,
            loss_configs=paths,
        )


def write_loss_configs(best: Sequence[CandidateRow], folder: Path) -> list[Path]:
    """Write the best genomes as loss configs ``best_<rank>.yaml`` that ``train.py`` accepts."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for rank, row in enumerate(best, start=1):
        genome = genome_from_dict(row.genome)
        node = {"_target_": "lossevo.losses.genome_loss", "name": f"best_{rank}", "genome": genome.to_dict()}
        header = (
            f"# Rank {rank} of the search: candidate {row.id}, fitness {row.fitness:.4f}\n# {row.equation}\n"
        )
        path = folder / f"best_{rank}.yaml"
        path.write_text(header + OmegaConf.to_yaml(OmegaConf.create(node)))
        paths.append(path)
    return paths


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"
