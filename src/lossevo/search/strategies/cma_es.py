"""CMA-ES for the strategies that use it (TaylorGLO, GLO's coefficient phase): seeded, and saved in
the journal as plain data.

``cma`` draws its samples through the ``randn`` option; :class:`SeededNormal` feeds it from a seeded
numpy Generator, so an optimiser rebuilt from its seed draws the same samples. The journal
therefore keeps what made the optimiser and what it was told (:class:`SeededCMA`: the start, σ,
the population, the seed, every generation's fitness), never a pickle of it: a pickle runs
whatever it says when loaded, and a journal is a file a user may be handed. A resume rebuilds the
optimiser and tells it the same generations again, which reproduces it exactly under the same
``cma`` version (the state records the version; another one resumes with a warning).

Journals of lossevo 0.1 hold a pickled optimiser; it is loaded only when the user says they trust
the file (``LOSSEVO_TRUST_PICKLES=1``), since loading it can run code.
"""

from __future__ import annotations

import base64
import logging
import os
import pickle
from typing import Any

import numpy as np

from lossevo.errors import LossevoError

log = logging.getLogger(__name__)


class SeededNormal:
    """``cma``'s ``randn`` option, drawing from a numpy Generator (a function object, unlike a lambda)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC3A]))

    def __call__(self, *shape: int) -> np.ndarray:
        return self.rng.standard_normal(shape)


def new_cma(x0: np.ndarray, sigma: float, population: int, seed: int, bounds: Any = None) -> Any:
    """A seeded ``cma.CMAEvolutionStrategy`` (minimising), quiet."""
    import cma

    options = {"popsize": population, "randn": SeededNormal(seed), "seed": seed + 1, "verbose": -9}
    if bounds is not None:
        options["bounds"] = bounds
    return cma.CMAEvolutionStrategy(x0, sigma, options)


class SeededCMA:
    """A seeded CMA-ES (minimising) whose state is plain data: how it was made and what it was told."""

    def __init__(self, x0: np.ndarray, sigma: float, population: int, seed: int) -> None:
        self.x0 = [float(v) for v in x0]
        self.sigma, self.population, self.seed = float(sigma), int(population), int(seed)
        self.es = new_cma(np.asarray(self.x0), self.sigma, self.population, self.seed)
        self.told: list[list[float]] = []  # every generation's fitness, in order
        self.asked = 0  # generations asked (one more than told while a generation is out)
        self._last: list[np.ndarray] = []
        self._pickled = False  # a lossevo 0.1 optimiser: it is saved as it was loaded

    @property
    def popsize(self) -> int:
        return int(self.es.popsize)

    def ask(self) -> list[np.ndarray]:
        self.asked += 1
        self._last = [np.asarray(x, dtype=np.float64) for x in self.es.ask()]
        return [x.copy() for x in self._last]

    def tell(self, solutions: list[np.ndarray], fitness: list[float]) -> None:
        """Tell the last generation asked (its solutions, as asked) with their fitness."""
        asked = [np.asarray(s, dtype=np.float64) for s in solutions]
        same = len(asked) == len(self._last) and all(map(np.array_equal, asked, self._last))
        if self._last and not same:
            raise ValueError("CMA-ES is told the solutions it asked for, in order")
        self.es.tell(asked, [float(f) for f in fitness])
        self.told.append([float(f) for f in fitness])
        self._last = []

    def state(self) -> dict[str, Any]:
        import cma

        if self._pickled:
            return {"cma": str(cma.__version__), "pickle": base64.b64encode(pickle.dumps(self.es)).decode()}
        made = {"x0": self.x0, "sigma": self.sigma, "population": self.population, "seed": self.seed}
        return {"cma": str(cma.__version__), **made, "told": self.told, "asked": self.asked}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> SeededCMA:
        """The optimiser :meth:`state` describes: rebuilt, asked and told the same generations."""
        import cma

        if "pickle" in state:
            return cls._from_pickle(state)
        try:
            es = cls(
                np.asarray(state["x0"], dtype=np.float64), state["sigma"], state["population"], state["seed"]
            )
            for fitness in state["told"]:
                solutions = es.ask()
                es.tell(solutions, fitness)
            if int(state["asked"]) > len(state["told"]):  # a generation was out when it was saved
                es.ask()
        except (KeyError, TypeError, ValueError) as err:
            raise LossevoError(
                f"this search's CMA-ES state is not readable ({type(err).__name__}: {err})"
            ) from None
        written = state.get("cma", "unknown")
        if written != str(cma.__version__):
            log.warning(
                "CMA-ES state written by cma %s, rebuilt with cma %s: it may differ", written, cma.__version__
            )
        return es

    @classmethod
    def _from_pickle(cls, state: dict[str, Any]) -> SeededCMA:
        """A lossevo 0.1 journal's pickled optimiser, loaded only when the user trusts the file."""
        import cma

        if os.environ.get("LOSSEVO_TRUST_PICKLES") != "1":
            raise LossevoError(
                "this search's CMA-ES state was saved by lossevo 0.1 as a pickle, which can run code when "
                "loaded; if you trust this journal (you made it), resume with LOSSEVO_TRUST_PICKLES=1"
            )
        written, here = state.get("cma", "unknown"), str(cma.__version__)
        try:
            es = pickle.loads(base64.b64decode(state["pickle"]))
            if not callable(getattr(es, "ask", None)) or not callable(getattr(es, "tell", None)):
                raise TypeError("not a CMA-ES optimiser")
        except Exception as err:
            raise LossevoError(
                f"this search's CMA-ES state was written by cma {written} and cma {here} cannot read it "
                f"({type(err).__name__}: {err}); resume it after `pip install 'cma=={written}'`, "
                "or start a new search in another folder"
            ) from None
        wrapped = cls.__new__(cls)
        wrapped.es, wrapped.told, wrapped.asked, wrapped._last, wrapped._pickled = es, [], 0, [], True
        wrapped.x0, wrapped.sigma, wrapped.population, wrapped.seed = [], 0.0, int(es.popsize), 0
        return wrapped
