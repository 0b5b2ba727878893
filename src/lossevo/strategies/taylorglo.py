"""TaylorGLO (Gonzalez & Miikkulainen): CMA-ES over the 8 Taylor parameters (REFERENCE §6).

CMA-ES (the ``cma`` package) starts at λ = 0 with σ = 1.2 and a population of 20, or 40 when the
null-epoch invariant screens candidates: a λ for which Theorem 6.5.1 says the loss cannot train
gets fitness 0 without training (it never reaches the surrogate). A generation is told to CMA-ES
once all its members have results; failed trainings count as fitness 0. CMA-ES minimises, so it
is told ``-fitness``. Its random numbers come from a seeded numpy Generator pickled with it,
which makes the strategy's state exact across a resume.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

import numpy as np

from lossevo.errors import LossevoError
from lossevo.genome.taylor import PARAMETERS, TaylorSpace, taylor
from lossevo.strategies.base import Proposal, Strategy


class SeededNormal:
    """``cma``'s ``randn`` option, drawing from a numpy Generator (picklable, unlike a lambda)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC3A]))

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


def new_cma(x0: np.ndarray, sigma: float, population: int, seed: int, bounds: Any = None) -> Any:
    import cma

    options = {"popsize": population, "randn": SeededNormal(seed), "seed": seed + 1, "verbose": -9}
    if bounds is not None:
        options["bounds"] = bounds
    return cma.CMAEvolutionStrategy(x0, sigma, options)


def pack(obj: Any) -> str:
    return base64.b64encode(pickle.dumps(obj)).decode()


def unpack(text: str) -> Any:
    return pickle.loads(base64.b64decode(text))


class TaylorGLO(Strategy):
    def __init__(
        self,
        space: Any,
        seed: int = 0,
        population: int | None = None,
        sigma: float = 1.2,
        invariant: bool = True,
        invariant_both: bool = True,
        classes: int = 10,
    ) -> None:
        if not isinstance(space, TaylorSpace):
            raise LossevoError("search=taylorglo searches Taylor parameters: use space=taylor")
        self.invariant, self.invariant_both, self.classes = invariant, invariant_both, classes
        popsize = population or (40 if invariant else 20)
        self.es = new_cma(np.zeros(PARAMETERS), sigma, popsize, seed)
        self.next_id = 1
        self.generation_index = 0
        self.generation: list[list[float]] | None = None  # the solutions CMA-ES asked for
        self.queue: list[int] = []  # members not yet proposed
        self.results: dict[int, float] = {}  # member -> fitness
        self.pending: dict[int, int] = {}  # candidate id -> member
        self.stats = {"invariant_rejections": 0, "generations": 0, "failed": 0}
        self.best: tuple[float, list[float]] | None = None

    # ------------------------------------------------------------------ ask / tell
    def ask(self) -> Proposal | None:
        screened = 0  # whole generations rejected by the invariant in a row
        while True:
            if self.generation is None:
                if screened >= 1000:
                    raise LossevoError(
                        "1,000 TaylorGLO generations in a row were all untrainable by the invariant; "
                        "check search.classes or turn search.invariant off"
                    )
                self.generation = [list(map(float, x)) for x in self.es.ask()]
                self.queue = list(range(len(self.generation)))
                self.results = {}
            while self.queue:
                member = self.queue.pop(0)
                genome = taylor(self.generation[member])
                if self.invariant and genome.untrainable(self.classes, both=self.invariant_both):
                    self.results[member] = 0.0  # untrainable at the null epoch: no training
                    self.stats["invariant_rejections"] += 1
                    continue
                proposal = Proposal(self.next_id, genome, None, f"g{self.generation_index}")
                self.pending[self.next_id] = member
                self.next_id += 1
                return proposal
            if self.pending:
                return None  # the generation's last results are outstanding
            screened += 1
            self._close_generation()

    def tell(self, candidate_id: int, fitness: float | None) -> None:
        member = self.pending.pop(candidate_id)
        self.stats["failed"] += fitness is None
        self.results[member] = 0.0 if fitness is None else float(fitness)
        if fitness is not None and (self.best is None or fitness > self.best[0]):
            self.best = (float(fitness), self.generation[member])  # type: ignore[index]
        if not self.queue and not self.pending:
            self._close_generation()

    def _close_generation(self) -> None:
        assert self.generation is not None
        solutions = [np.asarray(x) for x in self.generation]
        self.es.tell(solutions, [-self.results[i] for i in range(len(solutions))])
        self.generation = None
        self.generation_index += 1
        self.stats["generations"] += 1

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        return {
            "es": pack(self.es),
            "next_id": self.next_id,
            "generation_index": self.generation_index,
            "generation": self.generation,
            "queue": self.queue,
            "results": {str(k): v for k, v in self.results.items()},
            "pending": {str(k): v for k, v in self.pending.items()},
            "stats": dict(self.stats),
            "best": self.best,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.es = unpack(state["es"])
        self.next_id = state["next_id"]
        self.generation_index = state["generation_index"]
        self.generation = state["generation"]
        self.queue = list(state["queue"])
        self.results = {int(k): v for k, v in state["results"].items()}
        self.pending = {int(k): v for k, v in state["pending"].items()}
        self.stats = dict(state["stats"])
        self.best = None if state["best"] is None else (state["best"][0], list(state["best"][1]))

    def summary(self) -> dict[str, Any]:
        return {**self.stats, "best_fitness": None if self.best is None else self.best[0]}
