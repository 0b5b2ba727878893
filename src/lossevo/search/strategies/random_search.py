"""Random search: ``budget`` random valid losses from any space (MH-AUG evaluates 1,000).

Every candidate passes the integrity check, with novelty against all candidates drawn so far, so
the sample has no near-duplicates; nothing is learned from the results.
"""

from __future__ import annotations

from typing import Any

from lossevo.genome.base import SearchSpace
from lossevo.genome.sampling import NovelSampler
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
        self.sampler = NovelSampler.seeded(space, seed, integrity, max_random_tries)
        self.rng = self.sampler.rng
        self.next_id = 1
        self.stats = {"integrity_rejections": 0, "evaluated": 0, "failed": 0}

    def ask(self) -> Proposal:
        try:
            genome = self.sampler.draw()
        finally:
            self.stats["integrity_rejections"] = self.sampler.rejections
        proposal = Proposal(self.next_id, genome, None, "random")
        self.next_id += 1
        return proposal

    def tell(self, candidate_id: int, fitness: float | None) -> None:
        self.stats["evaluated"] += 1
        self.stats["failed"] += fitness is None

    def state_dict(self) -> dict[str, Any]:
        return {
            "rng": rng_state(self.rng),
            "next_id": self.next_id,
            "asked": self.sampler.drawn,
            "stats": dict(self.stats),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        restore_rng(self.rng, state["rng"])
        self.next_id = state["next_id"]
        self.stats = dict(state["stats"])
        self.sampler.rejections = int(self.stats.get("integrity_rejections", 0))
        self.sampler.restore(state["asked"])

    def summary(self) -> dict[str, Any]:
        return dict(self.stats)
