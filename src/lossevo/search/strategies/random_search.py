"""Random search: ``budget`` random valid losses from any space (MH-AUG evaluates 1,000).

Every candidate passes the integrity check, with novelty against all candidates drawn so far, so
the sample has no near-duplicates; nothing is learned from the results.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossevo.errors import LossevoError
from lossevo.genome.base import SearchSpace, genome_from_dict
from lossevo.genome.integrity import IntegrityChecker, NoveltyArchive
from lossevo.search.strategies.base import Proposal, Strategy, restore_rng, rng_state


class RandomSearch(Strategy):
    def __init__(
        self,
        space: SearchSpace[Any],
        seed: int = 0,
        max_random_tries: int = 100_000,
        integrity: dict[str, Any] | None = None,
    ) -> None:
        self.space = space
        self.max_random_tries = max_random_tries
        self.checker = IntegrityChecker(**(integrity or {}))
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0x7A4D]))
        self.next_id = 1
        self.asked: list[dict[str, Any]] = []  # genomes drawn so far, for novelty on resume
        self.archive = NoveltyArchive()
        self.stats = {"integrity_rejections": 0, "evaluated": 0, "failed": 0}

    def ask(self) -> Proposal:
        for _ in range(self.max_random_tries):
            genome = self.space.random(self.rng)
            result = self.checker.check(genome, self.archive)
            if result.ok and result.phenotype is not None:  # a passing check has its phenotype
                genome = genome.with_sign(result.sign)
                proposal = Proposal(self.next_id, genome, None, "random")
                self.archive.add(self.next_id, result.phenotype)
                self.asked.append(genome.to_dict())
                self.next_id += 1
                return proposal
            self.stats["integrity_rejections"] += 1
        raise LossevoError(
            f"no random genome passed the integrity check in {self.max_random_tries} tries; "
            "loosen the search's integrity settings or the space's op set"
        )

    def tell(self, candidate_id: int, fitness: float | None) -> None:
        self.stats["evaluated"] += 1
        self.stats["failed"] += fitness is None

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": rng_state(self.rng),
            "next_id": self.next_id,
            "asked": self.asked,
            "stats": dict(self.stats),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_rng(self.rng, state["rng"])
        self.next_id = state["next_id"]
        self.asked = list(state["asked"])
        self.stats = dict(state["stats"])
        self.archive = NoveltyArchive()
        for i, data in enumerate(self.asked, start=1):
            result = self.checker.check(genome_from_dict(data).with_sign(1))
            if result.phenotype is not None:
                self.archive.add(i, result.phenotype)

    def summary(self) -> dict[str, Any]:
        return dict(self.stats)
