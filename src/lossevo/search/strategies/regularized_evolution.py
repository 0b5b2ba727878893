"""Regularized evolution (Real et al. 2019) as Morgan & Hougen use it (docs/methods.md §3).

* Decoupled initial population: ``initial_population`` random valid losses are evaluated; the
  best ``population_size`` of them form the first population, ordered by age (evaluation order).
* Each child: a tournament of ``tournament_size`` members drawn with replacement picks the
  fittest as parent; mutation is retried until the child passes the integrity check (novelty
  against the population), at most ``max_mutation_tries`` times, else a new tournament is run.
* A child whose training fails is replaced by a new mutation of the same parent, up to
  ``max_redos`` attempts in all; a child that trains joins the population and the oldest member
  leaves (aging).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lossevo.errors import LossevoError
from lossevo.genome.base import Genome, SearchSpace, genome_from_dict
from lossevo.genome.integrity import IntegrityChecker, NoveltyArchive
from lossevo.search.strategies.base import Proposal, Strategy, restore_rng, rng_state


@dataclass
class Member:
    id: int
    genome: Genome
    fitness: float  # the result at ``rung``
    rung: int = 0  # the highest fidelity rung it trained at (lossevo.search.fidelity: promotions)

    @property
    def rank(self) -> tuple[int, float]:
        """What tournaments compare: a result at a longer budget outranks any shorter one."""
        return self.rung, self.fitness

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "genome": self.genome.to_dict(), "fitness": self.fitness, "rung": self.rung}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Member:
        return cls(data["id"], genome_from_dict(data["genome"]), data["fitness"], data.get("rung", 0))


@dataclass
class Outstanding:
    """An asked candidate waiting for its result."""

    genome: Genome
    phase: str
    parent: Member | None = None
    redos_left: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "genome": self.genome.to_dict(),
            "phase": self.phase,
            "parent": None if self.parent is None else self.parent.to_dict(),
            "redos_left": self.redos_left,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Outstanding:
        parent = None if data["parent"] is None else Member.from_dict(data["parent"])
        return cls(genome_from_dict(data["genome"]), data["phase"], parent, data["redos_left"])


class RegularizedEvolution(Strategy):
    """See the module docstring. ``space`` provides ``random(rng)`` and ``mutate(genome, rng)``."""

    def __init__(
        self,
        space: SearchSpace[Any],
        seed: int = 0,
        initial_population: int = 1000,
        population_size: int = 100,
        tournament_size: int = 20,
        max_mutation_tries: int = 2500,
        max_redos: int = 7,
        max_random_tries: int = 100_000,
        max_tournaments: int = 1000,
        integrity: dict[str, Any] | None = None,
    ) -> None:
        if population_size < 1 or tournament_size < 1 or initial_population < 1:
            raise LossevoError("search: initial_population, population_size and tournament_size must be >= 1")
        self.space = space
        self.initial_population = initial_population
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.max_mutation_tries = max_mutation_tries
        self.max_redos = max(1, max_redos)
        self.max_random_tries = max_random_tries
        self.max_tournaments = max_tournaments
        self.checker = IntegrityChecker(**(integrity or {}))
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EA]))
        self.next_id = 1
        self.phase = "initial"
        self.initial_asked = 0
        self.initial_done: list[Member] = []
        self.population: list[Member] = []  # oldest first
        self.outstanding: dict[int, Outstanding] = {}
        self.redo_queue: list[tuple[Member, int]] = []
        self.archive = NoveltyArchive()
        self.stats = {"integrity_rejections": 0, "mutation_failures": 0, "redos": 0}

    # ------------------------------------------------------------------ ask
    def ask(self) -> Proposal | None:
        if self.phase == "initial":
            if self.initial_asked >= self.initial_population and not self._initial_can_grow():
                return None  # the population forms once the outstanding initial results arrive
            return self._ask_random()
        return self._ask_child()

    def _initial_can_grow(self) -> bool:
        # Every initial candidate failed so far: keep drawing random ones until one trains.
        return not self.outstanding and not self.initial_done

    def _ask_random(self, phase: str = "initial") -> Proposal:
        for _ in range(self.max_random_tries):
            genome = self.space.random(self.rng)
            result = self.checker.check(genome, self.archive)
            if result.ok:
                genome = genome.with_sign(result.sign)
                return self._propose(genome, Outstanding(genome, phase), result.phenotype)
            self.stats["integrity_rejections"] += 1
        raise LossevoError(
            f"no random genome passed the integrity check in {self.max_random_tries} tries; "
            "loosen the search's integrity settings or the space's op set"
        )

    def _ask_child(self) -> Proposal:
        if not self.population and not self.redo_queue:
            return self._ask_random("evolve")  # every member failed at a longer budget: reseed
        for _ in range(self.max_tournaments):
            if self.redo_queue:
                parent, redos_left = self.redo_queue.pop(0)
                self.stats["redos"] += 1
            else:
                parent, redos_left = self._tournament(), self.max_redos
            for _ in range(self.max_mutation_tries):
                genome = self.space.mutate(parent.genome, self.rng)
                result = self.checker.check(genome, self.archive)
                if result.ok:
                    genome = genome.with_sign(result.sign)
                    pending = Outstanding(genome, "evolve", parent, redos_left)
                    return self._propose(genome, pending, result.phenotype)
                self.stats["integrity_rejections"] += 1
            self.stats["mutation_failures"] += 1
        raise LossevoError(
            f"{self.max_tournaments} tournaments in a row found no valid mutation "
            f"(max_mutation_tries={self.max_mutation_tries}); the population may have collapsed"
        )

    def _tournament(self) -> Member:
        draws = self.rng.integers(len(self.population), size=self.tournament_size)
        best = self.population[int(draws[0])]
        for i in draws[1:]:
            member = self.population[int(i)]
            if member.rank > best.rank:
                best = member
        return best

    def _propose(self, genome: Genome, pending: Outstanding, phenotype: Any) -> Proposal:
        candidate_id = self.next_id
        self.next_id += 1
        if pending.phase == "initial":
            self.initial_asked += 1
        self.outstanding[candidate_id] = pending
        self.archive.add(candidate_id, phenotype)
        parent_id = None if pending.parent is None else pending.parent.id
        return Proposal(candidate_id, genome, parent_id, pending.phase)

    # ------------------------------------------------------------------ tell
    def tell(self, candidate_id: int, fitness: float | None) -> None:
        pending = self.outstanding.pop(candidate_id)
        if fitness is None:
            self.archive.remove(candidate_id)
            if pending.phase == "evolve" and pending.redos_left > 1 and pending.parent is not None:
                # Redo: a new mutation of the same parent comes next (a child always has one).
                self.redo_queue.insert(0, (pending.parent, pending.redos_left - 1))
        elif pending.phase == "initial":
            self.initial_done.append(Member(candidate_id, pending.genome, fitness))
        else:
            self.population.append(Member(candidate_id, pending.genome, fitness))
            while len(self.population) > self.population_size:
                oldest = self.population.pop(0)
                self.archive.remove(oldest.id)
        if self.phase == "initial":
            self._maybe_form_population()

    def promoted(self, candidate_id: int, rung: int, fitness: float | None) -> None:
        """A member's result at a longer budget replaces its rung-0 one in tournaments; a member
        that fails there leaves the population (it cannot be trusted to train)."""
        for members in (self.population, self.initial_done):
            for member in members:
                if member.id == candidate_id:
                    if fitness is None:
                        members.remove(member)
                        self.archive.remove(member.id)
                    elif rung > member.rung:
                        member.rung, member.fitness = rung, float(fitness)
                    return

    def _maybe_form_population(self) -> None:
        initial_outstanding = any(p.phase == "initial" for p in self.outstanding.values())
        if self.initial_asked < self.initial_population or initial_outstanding or not self.initial_done:
            return
        ranked = sorted(self.initial_done, key=lambda m: (-m.rung, -m.fitness, m.id))
        keep = {m.id for m in ranked[: self.population_size]}
        self.population = [m for m in self.initial_done if m.id in keep]  # by age
        for member in self.initial_done:
            if member.id not in keep:
                self.archive.remove(member.id)
        self.initial_done = []
        self.phase = "evolve"

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": rng_state(self.rng),
            "next_id": self.next_id,
            "phase": self.phase,
            "initial_asked": self.initial_asked,
            "initial_done": [m.to_dict() for m in self.initial_done],
            "population": [m.to_dict() for m in self.population],
            "outstanding": {str(k): v.to_dict() for k, v in self.outstanding.items()},
            "redo_queue": [[m.to_dict(), n] for m, n in self.redo_queue],
            "stats": dict(self.stats),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_rng(self.rng, state["rng"])
        self.next_id = state["next_id"]
        self.phase = state["phase"]
        self.initial_asked = state["initial_asked"]
        self.initial_done = [Member.from_dict(m) for m in state["initial_done"]]
        self.population = [Member.from_dict(m) for m in state["population"]]
        self.outstanding = {int(k): Outstanding.from_dict(v) for k, v in state["outstanding"].items()}
        self.redo_queue = [(Member.from_dict(m), n) for m, n in state["redo_queue"]]
        self.stats = dict(state["stats"])
        # The novelty archive is derived: recompute the phenotypes of everyone it holds.
        self.archive = NoveltyArchive()
        holders = [(m.id, m.genome) for m in self.population + self.initial_done]
        holders += [(k, v.genome) for k, v in self.outstanding.items()]
        for member_id, genome in sorted(holders, key=lambda item: item[0]):
            result = self.checker.check(genome.with_sign(1))
            if result.phenotype is None:
                raise LossevoError(
                    f"restored candidate {member_id} no longer passes the integrity check ({result.reason})"
                )
            self.archive.add(member_id, result.phenotype)

    def summary(self) -> dict[str, Any]:
        best = max((m.fitness for m in self.population), default=None)
        return {
            "phase": self.phase,
            "population": len(self.population),
            "best_in_population": best,
            **self.stats,
        }
