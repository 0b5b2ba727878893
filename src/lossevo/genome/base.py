"""The genome contract shared by every search space.

A genome is one individual of a search space. It compiles to a per-sample torch function of
``(y, yhat)`` (targets and softmax outputs, both ``[B, C]``) returning ``[B]`` before the sign is
applied; the sign is decided by the integrity check on that unflipped curve (REFERENCE §2) and
stored with the genome so a saved loss trains the same way it was evaluated.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import sympy as sp
import torch

from lossevo.errors import GenomeError

PerSampleFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class Genome(ABC):
    """One candidate loss of a search space."""

    space: ClassVar[str]
    sign: int

    @abstractmethod
    def validate(self) -> None:
        """Raise :class:`GenomeError` naming the problem if the genome is structurally invalid."""

    @abstractmethod
    def compile(self) -> PerSampleFn:
        """The unsigned per-sample loss ``f(y, yhat) -> [B]``, vectorised, with autograd."""

    @abstractmethod
    def expression(self) -> sp.Expr:
        """The unsigned per-class expression in ``y`` and ``yhat`` (sympy)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/YAML-safe) from which :func:`genome_from_dict` rebuilds the genome."""

    @abstractmethod
    def canonical(self) -> str:
        """A string equal for genomes that compute the same expression (ignores unused parts)."""

    @abstractmethod
    def with_sign(self, sign: int) -> Genome:
        """A copy with the given sign (+1 or -1)."""

    # The reduction over classes, for rendering; spaces override it.
    reduction_text: ClassVar[str] = "Σ_c"
    reduction_latex: ClassVar[str] = r"\sum_{c}"

    def key(self) -> str:
        """Canonical cache key: equal for genomes computing the same signed loss."""
        digest = hashlib.sha1(f"{self.space}:{self.sign}:{self.canonical()}".encode())
        return digest.hexdigest()[:16]

    def equation(self) -> str:
        """Plain-text equation of the signed loss of one sample, e.g. ``L = -Σ_c [y*log(yhat)]``."""
        expr = self.expression()
        sign = "-" if self.sign < 0 else ""
        return f"L = {sign}{self.reduction_text} [{sp.sstr(expr)}]"

    def latex(self) -> str:
        """LaTeX equation of the signed loss of one sample."""
        expr = self.expression()
        sign = "-" if self.sign < 0 else ""
        return rf"\mathcal{{L}} = {sign}{self.reduction_latex} \left[ {sp.latex(expr)} \right]"

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def __str__(self) -> str:
        return self.equation()


_SPACES: dict[str, type[Genome]] = {}


def register_space(cls: type[Genome]) -> type[Genome]:
    _SPACES[cls.space] = cls
    return cls


def genome_from_dict(data: Any) -> Genome:
    """Rebuild a genome from :meth:`Genome.to_dict` output; raises :class:`GenomeError`."""
    if not isinstance(data, dict):
        raise GenomeError(f"a genome must be a mapping with a 'space' key, got {type(data).__name__}")
    space = data.get("space")
    if space not in _SPACES:
        known = ", ".join(sorted(_SPACES))
        raise GenomeError(f"unknown genome space {space!r}; known spaces: {known}")
    genome = _SPACES[space].from_dict(data)  # type: ignore[attr-defined]
    genome.validate()
    return genome
