"""TaylorGLO (Gonzalez & Miikkulainen): CMA-ES over the 8 Taylor parameters (docs/methods.md §6).

CMA-ES (the ``cma`` package) starts at λ = 0 with σ = 1.2 and a population of 20, or 40 when the
null-epoch invariant screens candidates: a λ for which Theorem 6.5.1 says the loss cannot train
gets fitness 0 without training (it never reaches the surrogate). A generation is told to CMA-ES
once all its members have results (the generational machinery GLO uses); failed trainings count
as fitness 0. CMA-ES minimises, so it is told ``-fitness``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossevo.errors import LossevoError
from lossevo.genome.base import Genome, SearchSpace
from lossevo.genome.taylor import PARAMETERS, TaylorGenome, TaylorSpace, taylor
from lossevo.search.strategies import cma_es
from lossevo.search.strategies.generational import GenerationalStrategy


class TaylorGLO(GenerationalStrategy):
    def __init__(
        self,
        space: SearchSpace[Any],
        seed: int = 0,
        population: int | str | None = "auto",
        sigma: float = 1.2,
        invariant: bool = True,
        invariant_both: bool = True,
        classes: int | None = 10,
    ) -> None:
        if not isinstance(space, TaylorSpace):
            raise LossevoError("search=taylorglo searches Taylor parameters: use space=taylor")
        if classes is None and invariant:
            raise LossevoError(
                "search=taylorglo's invariant needs the class count: set dataset.num_classes=<n> "
                "(or search.invariant=false)"
            )
        super().__init__(seed, salt=0x7A1)
        self.invariant, self.invariant_both, self.classes = invariant, invariant_both, int(classes or 0)
        popsize = (40 if invariant else 20) if population in (None, "auto") else int(population)
        self.es = cma_es.SeededCMA(np.zeros(PARAMETERS), sigma, popsize, seed)
        self.stats["invariant_rejections"] = 0
        self.best: tuple[float, list[float]] | None = None

    def breed(self) -> list[Genome]:
        return [taylor([float(v) for v in x]) for x in self.es.ask()]

    def presume(self, genome: Genome) -> float | None:
        genome = _taylor(genome)
        if self.invariant and genome.untrainable(self.classes, both=self.invariant_both):
            self.stats["invariant_rejections"] += 1
            return 0.0  # untrainable at the null epoch: no training
        return None

    def select(self, members: list[Genome], fitness: list[float]) -> None:
        params = [list(_taylor(g).params) for g in members]
        for p, value in zip(params, fitness, strict=True):
            if value > 0 and (self.best is None or value > self.best[0]):
                self.best = (value, p)
        self.es.tell([np.asarray(p) for p in params], [-f for f in fitness])

    def stalled(self) -> LossevoError:
        return LossevoError(
            "10,000 TaylorGLO generations in a row were all untrainable by the invariant; "
            "check search.classes (the dataset's class count) or turn search.invariant off"
        )

    def state_dict(self) -> dict[str, Any]:
        return {**self._base_state(), "es": self.es.state(), "best": self.best}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._load_base(state)
        self.es = cma_es.SeededCMA.from_state(state["es"])
        self.best = None if state["best"] is None else (state["best"][0], list(state["best"][1]))

    def summary(self) -> dict[str, Any]:
        return {**self.stats, "best_fitness": None if self.best is None else self.best[0]}


def _taylor(genome: Genome) -> TaylorGenome:
    """A member of TaylorGLO's generation: always a Taylor genome."""
    if not isinstance(genome, TaylorGenome):
        raise LossevoError(f"search=taylorglo evolves Taylor parameters, got a {genome.space} genome")
    return genome
