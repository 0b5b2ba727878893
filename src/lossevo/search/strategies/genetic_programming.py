"""NGL's genetic programming (docs/methods.md §7): a (μ+λ) GP over expression trees.

Generation 0 is ``population`` random valid trees. Each generation, every parent breeds one
child: subtree crossover with probability 0.7 (its partner drawn from the external archive with
probability 0.5 when the archive has members, else from the population), then subtree mutation
with probability 0.3 and one-point mutation with 0.1. Children must pass the integrity check
(both y and yhat, finite, one optimum, ...; NGL itself discards losses leaving [1e-9, 1e9]).
Parents and children are ranked together by fitness and the best ``population`` survive; each
one that does not is stored in the archive (size ``population``) with probability 0.5.
"""

from __future__ import annotations

from typing import Any

from lossevo.errors import LossevoError
from lossevo.genome.base import Genome, SearchSpace, genome_from_dict
from lossevo.genome.integrity import IntegrityChecker
from lossevo.genome.tree import TreeGenome, TreeSpace, as_tree
from lossevo.search.strategies.generational import GenerationalStrategy


class GeneticProgramming(GenerationalStrategy):
    def __init__(
        self,
        space: SearchSpace[Any],
        seed: int = 0,
        population: int | str = 16,  # auto: 16, the paper's
        crossover: float = 0.7,
        subtree_mutation: float = 0.3,
        one_point_mutation: float = 0.1,
        archive_store: float = 0.5,
        archive_crossover: float = 0.5,
        max_tries: int = 1000,
        integrity: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(space, TreeSpace):
            raise LossevoError("search=gp breeds expression trees: use space=tree_ngl or space=tree_glo")
        super().__init__(seed, salt=0x6E91)
        self.space = space
        self.size = 16 if population == "auto" else int(population)
        self.p_crossover, self.p_subtree, self.p_one_point = crossover, subtree_mutation, one_point_mutation
        self.p_store, self.p_archive = archive_store, archive_crossover
        self.max_tries = max_tries
        self.checker = IntegrityChecker(**{"novelty_threshold": 0.0, **(integrity or {})})
        self.population: list[tuple[TreeGenome, float]] = []
        self.archive: list[TreeGenome] = []

    def _valid(self, genome: TreeGenome) -> TreeGenome | None:
        result = self.checker.check(genome)
        return genome.with_sign(result.sign) if result.ok else None

    def _random(self) -> TreeGenome:
        for _ in range(self.max_tries):
            genome = self._valid(self.space.random(self.rng))
            if genome is not None:
                return genome
        raise LossevoError(f"no random tree passed the integrity check in {self.max_tries} tries")

    def breed(self) -> list[Genome]:
        if not self.population:
            return [self._random() for _ in range(self.size)]
        return [self._child(i) for i in range(len(self.population))]

    def _child(self, i: int) -> TreeGenome:
        parent = self.population[i][0]
        for _ in range(self.max_tries):
            child = parent
            if self.rng.random() < self.p_crossover:
                if self.archive and self.rng.random() < self.p_archive:
                    partner = self.archive[int(self.rng.integers(len(self.archive)))]
                else:
                    others = [j for j in range(len(self.population)) if j != i] or [i]
                    partner = self.population[others[int(self.rng.integers(len(others)))]][0]
                child = self.space.crossover(child, partner, self.rng)[0]
            if self.rng.random() < self.p_subtree:
                child = self.space.subtree_mutation(child, self.rng)
            if self.rng.random() < self.p_one_point:
                child = self.space.one_point_mutation(child, self.rng)
            valid = self._valid(child)
            if valid is not None:
                return valid
        return self._random()

    def select(self, members: list[Genome], fitness: list[float]) -> None:
        pool = [*self.population, *zip(map(as_tree, members), fitness, strict=True)]
        order = sorted(range(len(pool)), key=lambda k: -pool[k][1])  # stable: parents win ties
        keep = set(order[: self.size])
        self.population = [pool[k] for k in sorted(keep)]
        for k in range(len(pool)):
            if k not in keep and self.rng.random() < self.p_store:
                if len(self.archive) < self.size:
                    self.archive.append(pool[k][0])
                else:
                    self.archive[int(self.rng.integers(self.size))] = pool[k][0]

    def state_dict(self) -> dict[str, Any]:
        return {
            **self._base_state(),
            "population": [[g.to_dict(), f] for g, f in self.population],
            "archive": [g.to_dict() for g in self.archive],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base(state)
        self.population = [(as_tree(genome_from_dict(g)), f) for g, f in state["population"]]
        self.archive = [as_tree(genome_from_dict(g)) for g in state["archive"]]

    def summary(self) -> dict[str, Any]:
        best = max((f for _, f in self.population), default=None)
        return {**self.stats, "archive": len(self.archive), "best_in_population": best}
