"""CMA-ES for the strategies that use it (TaylorGLO, GLO's coefficient phase): seeded, and saved
in the journal in a form a resume can trust.

``cma`` draws its samples through the ``randn`` option; :class:`SeededNormal` feeds it from a
seeded numpy Generator that is pickled with the optimiser, so a resumed search continues the
same sample stream. The saved state records the ``cma`` version that wrote it: a resume under
another version loads it when that version can, and otherwise stops with one message saying
which version to install.
"""

from __future__ import annotations

import base64
import logging
import pickle
from typing import Any

import numpy as np

from lossevo.errors import LossevoError

log = logging.getLogger(__name__)


class SeededNormal:
    """``cma``'s ``randn`` option, drawing from a numpy Generator (picklable, unlike a lambda)."""

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


def save(es: Any) -> dict[str, str]:
    """An optimiser as JSON-safe data: its pickle and the ``cma`` version that wrote it."""
    import cma

    return {"cma": str(cma.__version__), "pickle": base64.b64encode(pickle.dumps(es)).decode()}


def load(data: dict[str, str]) -> Any:
    """An optimiser saved by :func:`save`."""
    import cma

    written, here = data.get("cma", "unknown"), str(cma.__version__)
    try:
        es = pickle.loads(base64.b64decode(data["pickle"]))
        if not callable(getattr(es, "ask", None)) or not callable(getattr(es, "tell", None)):
            raise TypeError("not a CMA-ES optimiser")
    except Exception as err:
        raise LossevoError(
            f"this search's CMA-ES state was written by cma {written} and cma {here} cannot read it "
            f"({type(err).__name__}: {err}); resume it after `pip install 'cma=={written}'`, "
            "or start a new search in another folder"
        ) from None
    if written != here:
        log.warning("CMA-ES state written by cma %s, resumed with cma %s", written, here)
    return es
