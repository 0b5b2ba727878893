"""Random valid losses from a space: each passes the integrity check, none a near-duplicate of an
earlier one (novelty against every genome drawn so far). Random search proposes these; a study
(``correlate.py losses.random=N``) trains them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossevo.errors import LossevoError
from lossevo.genome.base import Genome, SearchSpace, genome_from_dict
from lossevo.genome.integrity import IntegrityChecker, NoveltyArchive


class NovelSampler:
    """Draws from ``space`` with ``rng`` until a genome passes ``integrity`` (at most ``max_tries``)."""

    def __init__(
        self,
        space: SearchSpace[Any],
        rng: np.random.Generator,
        integrity: dict[str, Any] | None = None,
        max_tries: int = 100_000,
    ) -> None:
        self.space = space
        self.rng = rng
        self.max_tries = max_tries
        self.checker = IntegrityChecker(**(integrity or {}))
        self.archive = NoveltyArchive()
        self.drawn: list[dict[str, Any]] = []  # every genome drawn, as data (a resume rebuilds from it)
        self.rejections = 0

    @classmethod
    def seeded(
        cls,
        space: SearchSpace[Any],
        seed: int,
        integrity: dict[str, Any] | None = None,
        max_tries: int = 100_000,
    ) -> NovelSampler:
        """The stream of ``search=random seed=<seed>``: a study drawing with the same seed gets its losses."""
        return cls(space, np.random.default_rng(np.random.SeedSequence([seed, 0x7A4D])), integrity, max_tries)

    def draw(self) -> Genome:
        for _ in range(self.max_tries):
            genome = self.space.random(self.rng)
            result = self.checker.check(genome, self.archive)
            if result.ok and result.phenotype is not None:  # a passing check has its phenotype
                genome = genome.with_sign(result.sign)
                self.drawn.append(genome.to_dict())
                self.archive.add(len(self.drawn), result.phenotype)
                return genome
            self.rejections += 1
        raise LossevoError(
            f"no random genome passed the integrity check in {self.max_tries} tries; "
            "loosen the search's integrity settings or the space's op set"
        )

    def restore(self, drawn: list[dict[str, Any]]) -> None:
        """Continue after ``drawn`` (the novelty archive rebuilt from their phenotypes)."""
        self.drawn = list(drawn)
        self.archive = NoveltyArchive()
        for i, data in enumerate(self.drawn, start=1):
            result = self.checker.check(genome_from_dict(data).with_sign(1))
            if result.phenotype is not None:
                self.archive.add(i, result.phenotype)
