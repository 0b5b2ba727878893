"""The ask/tell interface every search strategy implements.

``ask()`` proposes a candidate (with an id the strategy assigns, so its state and the journal
agree), ``tell(id, fitness)`` reports its result (``None`` when it failed). ``state_dict()`` is
plain JSON-safe data; ``load_state_dict`` restores a strategy exactly, RNG included, which is what
lets a killed search resume as if it had never stopped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossevo.genome.base import Genome


@dataclass
class Proposal:
    id: int
    genome: Genome
    parent_id: int | None
    phase: str


class Strategy(ABC):
    @abstractmethod
    def ask(self) -> Proposal | None:
        """The next candidate, or ``None`` when results of outstanding candidates are needed first."""

    @abstractmethod
    def tell(self, candidate_id: int, fitness: float | None) -> None:
        """Report the fitness of an asked candidate (``None``: it failed)."""

    def promoted(self, candidate_id: int, rung: int, fitness: float | None) -> None:  # noqa: B027 - optional hook
        """A told candidate's result at a longer training budget (fidelity rung ``rung`` >= 1;
        ``None``: it failed there). Strategies that keep ranking a living population use it;
        generational ones closed that generation when it was told and keep its rung-0 ranking."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]:
        """JSON-safe state, RNG included."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from :meth:`state_dict`."""

    def summary(self) -> dict[str, Any]:
        """Counters worth showing to the user (integrity rejections, ...)."""
        return {}


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return dict(rng.bit_generator.state)


def restore_rng(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state
