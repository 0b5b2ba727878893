"""Shared machinery of generational strategies: a generation is proposed member by member and
closed once every member has a result (inline, each ask is answered before the next; with
parallel executors, ``ask`` returns ``None`` while a generation's last results are out).

Members whose canonical key was already evaluated reuse that fitness without training (GLO's
fitness cache); members a strategy scores itself (e.g. fitness 0 for a tree without y) are never
proposed either.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossevo.genome.base import Genome, genome_from_dict
from lossevo.search.strategies.base import Proposal, Strategy, restore_rng, rng_state


class GenerationalStrategy(Strategy):
    """Subclasses implement :meth:`breed` (the next generation's genomes) and :meth:`select`
    (what to keep once a generation has its results), and may override :meth:`presume`."""

    def __init__(self, seed: int, salt: int) -> None:
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, salt]))
        self.next_id = 1
        self.generation_index = 0
        self.members: list[Genome] = []  # the generation being evaluated
        self.queue: list[int] = []
        self.results: dict[int, float] = {}
        self.pending: dict[int, int] = {}
        self.cache: dict[str, float] = {}  # canonical key -> fitness
        self.stats = {"generations": 0, "cached": 0, "presumed": 0, "failed": 0}

    # ------------------------------------------------------------------ to implement
    def breed(self) -> list[Genome]:
        raise NotImplementedError

    def select(self, members: list[Genome], fitness: list[float]) -> None:
        raise NotImplementedError

    def presume(self, genome: Genome) -> float | None:
        """A fitness known without training (e.g. 0 for an invalid tree), or None."""
        return None

    def phase(self) -> str:
        return f"g{self.generation_index}"

    def stalled(self) -> Exception:
        """The error raised when 10,000 generations in a row had nothing to train."""
        return RuntimeError("10,000 generations passed without a candidate to train")

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Proposal | None:
        for _ in range(10_000):
            if not self.members:
                self.members = self.breed()
                self.queue = list(range(len(self.members)))
                self.results = {}
            while self.queue:
                i = self.queue.pop(0)
                genome = self.members[i]
                known = self.presume(genome)
                if known is not None:
                    self.results[i] = known
                    self.stats["presumed"] += 1
                    continue
                key = genome.key()
                if key in self.cache:
                    self.results[i] = self.cache[key]
                    self.stats["cached"] += 1
                    continue
                proposal = Proposal(self.next_id, genome, None, self.phase())
                self.pending[self.next_id] = i
                self.next_id += 1
                return proposal
            if self.pending:
                return None
            self._close()
        raise self.stalled()

    def tell(self, candidate_id: int, fitness: float | None) -> None:
        i = self.pending.pop(candidate_id)
        value = 0.0 if fitness is None else float(fitness)
        self.stats["failed"] += fitness is None
        self.results[i] = value
        self.cache[self.members[i].key()] = value
        if not self.queue and not self.pending:
            self._close()

    def _close(self) -> None:
        members, fitness = self.members, [self.results[i] for i in range(len(self.members))]
        self.members = []
        self.select(members, fitness)
        self.generation_index += 1
        self.stats["generations"] += 1

    # ------------------------------------------------------------------ state
    def _base_state(self) -> dict[str, Any]:
        return {
            "rng": rng_state(self.rng),
            "next_id": self.next_id,
            "generation_index": self.generation_index,
            "members": [g.to_dict() for g in self.members],
            "queue": self.queue,
            "results": {str(k): v for k, v in self.results.items()},
            "pending": {str(k): v for k, v in self.pending.items()},
            "cache": self.cache,
            "stats": dict(self.stats),
        }

    def _load_base(self, state: dict[str, Any]) -> None:
        restore_rng(self.rng, state["rng"])
        self.next_id = state["next_id"]
        self.generation_index = state["generation_index"]
        self.members = [genome_from_dict(d, validate=False) for d in state["members"]]
        self.queue = list(state["queue"])
        self.results = {int(k): v for k, v in state["results"].items()}
        self.pending = {int(k): v for k, v in state["pending"].items()}
        self.cache = dict(state["cache"])
        self.stats = dict(state["stats"])
