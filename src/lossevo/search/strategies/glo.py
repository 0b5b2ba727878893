"""GLO (Gonzalez & Miikkulainen): genetic programming, then CMA-ES over the best tree's
coefficients (docs/methods.md §7).

GP phase (``gp_generations`` generations): trees of GLO's primitive set; the first generation is
random (depth <= 2, GLO's weights); after that the 6 best are kept as elites and the rest are
bred from roulette-selected pairs, recombined with probability 0.8 (both children kept) and
mutated bottom-up with GLO's rates. A tree without both y and yhat scores 0 without training,
as does one whose training fails (NaN); fitness is cached by canonical tree, so repeats are never
retrained. CMA-ES phase: the best tree's node coefficients are optimised by CMA-ES from 1 with
σ = 1.5 (``cma`` package, seeded), for the rest of the budget.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossevo.errors import LossevoError
from lossevo.genome.base import Genome, SearchSpace, genome_from_dict
from lossevo.genome.tree import TreeGenome, TreeSpace, as_tree
from lossevo.search.strategies import cma_es
from lossevo.search.strategies.generational import GenerationalStrategy


class GLO(GenerationalStrategy):
    def __init__(
        self,
        space: SearchSpace[Any],
        seed: int = 0,
        population: int | str = 80,  # auto: 80, the paper's
        elites: int = 6,
        crossover: float = 0.8,
        gp_generations: int = 20,
        cma_sigma: float = 1.5,
        cma_population: int | None = None,
    ) -> None:
        if not isinstance(space, TreeSpace):
            raise LossevoError("search=glo evolves GLO trees: use space=tree_glo")
        super().__init__(seed, salt=0x610)
        self.seed = seed
        self.space = space
        self.size = 80 if population == "auto" else int(population)
        self.elites, self.p_crossover = elites, crossover
        self.gp_generations = gp_generations
        self.cma_sigma, self.cma_population = cma_sigma, cma_population
        self.population: list[tuple[TreeGenome, float]] = []
        self.best: tuple[Genome, float] | None = None
        self.es: cma_es.SeededCMA | None = None  # in the CMA-ES phase
        self.cma_tree: TreeGenome | None = None  # the tree whose coefficients CMA-ES tunes

    @property
    def in_cma_phase(self) -> bool:
        return self.generation_index >= self.gp_generations

    def phase(self) -> str:
        return (
            f"cma{self.generation_index - self.gp_generations}"
            if self.in_cma_phase
            else f"gp{self.generation_index}"
        )

    def presume(self, genome: Genome) -> float | None:
        return 0.0 if genome.structure_problem() is not None else None

    # ------------------------------------------------------------------ breeding
    def breed(self) -> list[Genome]:
        if self.in_cma_phase:
            return self._cma_generation()
        if not self.population:
            return [self.space.random(self.rng) for _ in range(self.size)]
        ranked = sorted(self.population, key=lambda item: -item[1])
        children: list[Genome] = [g for g, _ in ranked[: self.elites]]
        while len(children) < self.size:
            a, b = self._roulette(), self._roulette()
            if self.rng.random() < self.p_crossover:
                a, b = self.space.crossover(a, b, self.rng)
            for child in (a, b):
                if len(children) < self.size:
                    children.append(self.space.glo_mutation(child, self.rng))
        return children

    def _roulette(self) -> TreeGenome:
        fitness = np.array([max(f, 0.0) for _, f in self.population])
        p = fitness / fitness.sum() if fitness.sum() > 0 else None
        return self.population[int(self.rng.choice(len(self.population), p=p))][0]

    def _cma_generation(self) -> list[Genome]:
        assert self.best is not None
        tree = as_tree(self.best[0])
        if self.es is None:
            n = len(tree.coefficients())
            popsize = self.cma_population or 4 + int(3 * np.log(n))
            self.es = cma_es.SeededCMA(
                np.asarray(tree.coefficients(), dtype=np.float64), self.cma_sigma, popsize, self.seed
            )
            self.cma_tree = tree
        return [tree.with_coefficients(list(map(float, x))) for x in self.es.ask()]

    def select(self, members: list[Genome], fitness: list[float]) -> None:
        for genome, value in zip(members, fitness, strict=True):
            if self.best is None or value > self.best[1]:
                self.best = (genome, value)
        if self.in_cma_phase:
            coefficients = [np.asarray(as_tree(g).coefficients(), dtype=np.float64) for g in members]
            assert self.es is not None  # made by the generation these members are
            self.es.tell(coefficients, [-f for f in fitness])
        else:
            self.population = list(zip(map(as_tree, members), fitness, strict=True))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            **self._base_state(),
            "population": [[g.to_dict(), f] for g, f in self.population],
            "best": None if self.best is None else [self.best[0].to_dict(), self.best[1]],
            "es": None if self.es is None else self.es.state(),
            "cma_tree": self.cma_tree.to_dict()
            if self.es is not None and self.cma_tree is not None
            else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base(state)
        self.population = [(as_tree(genome_from_dict(g, validate=False)), f) for g, f in state["population"]]
        self.best = (
            None
            if state["best"] is None
            else (genome_from_dict(state["best"][0], validate=False), state["best"][1])
        )
        self.es = None if state["es"] is None else cma_es.SeededCMA.from_state(state["es"])
        if state["cma_tree"] is not None:
            self.cma_tree = as_tree(genome_from_dict(state["cma_tree"], validate=False))

    def summary(self) -> dict[str, Any]:
        return {
            **self.stats,
            "phase": self.phase(),
            "best_fitness": None if self.best is None else self.best[1],
        }
