"""The genome contract shared by every search space.

A genome is one individual of a search space. It compiles to a per-sample torch function of
``(y, yhat)`` (targets and softmax outputs, both ``[B, C]``) returning ``[B]`` before the sign is
applied; the sign is decided by the integrity check on that unflipped curve (docs/methods.md §2) and
stored with the genome so a saved loss trains the same way it was evaluated.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import numpy as np
import sympy as sp
import torch

from lossevo.errors import GenomeError

if TYPE_CHECKING:
    from lossevo.genome.ops import Op

# (y, yhat, logits) -> per-sample loss [B]; y, yhat and logits are [B, C].
PerSampleFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


class Genome(ABC):
    """One candidate loss of a search space.

    The per-sample loss is ``sign * scale * reduce_c(expression(y, yhat[, logits]))`` where
    ``reduce_c`` is the sum (or mean) over classes and ``scale`` is +1 or -1: the space's own
    convention (graph: ``Σ_c``; GLO trees and TaylorGLO: ``-(1/n) Σ_c``; NGL trees: ``(1/n) Σ_c``).
    """

    space: ClassVar[str]
    sign: int

    @abstractmethod
    def structure_problem(self) -> str | None:
        """Why the genome cannot be evaluated (bad op, arity, reference, cycle...), or None."""

    @abstractmethod
    def compile(self, signed: bool = False) -> PerSampleFn:
        """The per-sample loss, vectorised, with autograd; without the sign unless ``signed``."""

    @abstractmethod
    def source(self, signed: bool = False, name: str = "loss_fn") -> str:
        """The Python source :meth:`compile` executes: ``def name(y, yhat, logits=None)`` calling the
        functions of :meth:`ops` by their ``function_name`` (``lossevo export`` writes both out)."""

    def ops(self) -> list[Op]:
        """The ops :meth:`source` calls."""
        return []

    @abstractmethod
    def expression(self) -> sp.Expr:
        """The per-class expression in ``y`` and ``yhat`` (and ``z``, the logit, if used)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/YAML-safe) from which :func:`genome_from_dict` rebuilds the genome."""

    @classmethod
    @abstractmethod
    def from_dict(cls, data: dict[str, Any]) -> Genome:
        """The genome :meth:`to_dict` wrote (raises :class:`GenomeError` on malformed data)."""

    @abstractmethod
    def canonical(self) -> str:
        """A string equal for genomes that compute the same expression (ignores unused parts)."""

    @abstractmethod
    def with_sign(self, sign: int) -> Genome:
        """A copy with the given sign (+1 or -1)."""

    @property
    def uses_logits(self) -> bool:
        """Whether the loss reads the logits directly (not only through yhat)."""
        return False

    def reduction(self) -> tuple[int, bool]:
        """``(scale, mean)``: the space's sign and whether classes are averaged (else summed)."""
        return 1, False

    def validate(self) -> None:
        """Raise :class:`GenomeError` naming the problem if the genome is structurally invalid."""
        problem = self.structure_problem()
        if problem is not None:
            raise GenomeError(f"invalid {self.space} genome: {problem}")

    def key(self) -> str:
        """Canonical cache key: equal for genomes computing the same signed loss."""
        digest = hashlib.sha1(f"{self.space}:{self.sign}:{self.canonical()}".encode())
        return digest.hexdigest()[:16]

    def _prefix(self, latex: bool) -> str:
        scale, mean = self.reduction()
        minus = "-" if self.sign * scale < 0 else ""
        if latex:
            return minus + (r"\frac{1}{n} \sum_{c}" if mean else r"\sum_{c}")
        return minus + ("(1/n) Σ_c" if mean else "Σ_c")

    def display_expression(self, digits: int = 5) -> sp.Expr:
        """:meth:`expression` with floating-point numbers shown to ``digits`` significant digits."""
        expr = self.expression()
        return expr.xreplace({f: sp.Float(f, digits) for f in expr.atoms(sp.Float)})

    def equation(self) -> str:
        """Plain-text equation of the signed loss of one sample, e.g. ``L = -Σ_c [y*log(yhat)]``."""
        return f"L = {self._prefix(latex=False)} [{sp.sstr(self.display_expression())}]"

    def latex(self) -> str:
        """LaTeX equation of the signed loss of one sample."""
        body = sp.latex(self.display_expression())
        return rf"\mathcal{{L}} = {self._prefix(latex=True)} \left[ {body} \right]"

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def __str__(self) -> str:
        return self.equation()


_SPACES: dict[str, type[Genome]] = {}


G = TypeVar("G", bound=Genome)


@runtime_checkable
class SearchSpace(Protocol[G]):
    """What every search space offers a strategy (``GraphSpace``, ``TreeSpace``, ``TaylorSpace``):
    random genomes of its kind ``G`` and mutations of one. Tree spaces add crossover and GP's
    mutations."""

    def random(self, rng: np.random.Generator) -> G:
        """A random genome (not yet checked for integrity)."""
        ...

    def mutate(self, genome: G, rng: np.random.Generator) -> G:
        """A mutated copy of ``genome``."""
        ...


def register_space(cls: type[Genome]) -> type[Genome]:
    _SPACES[cls.space] = cls
    return cls


def genome_from_dict(data: Any, validate: bool = True) -> Genome:
    """Rebuild a genome from :meth:`Genome.to_dict` output; raises :class:`GenomeError`.
    ``validate=False`` also accepts a well-formed but invalid genome (a strategy's own record of
    e.g. a GLO tree without y, which scored 0)."""
    from lossevo.genome.plain import check_plain

    if not isinstance(data, dict):
        raise GenomeError(f"a genome must be a mapping with a 'space' key, got {type(data).__name__}")
    check_plain(data, names=False)  # bounded size first: parsing below recurses
    space = data.get("space")
    if not isinstance(space, str) or space not in _SPACES:
        known = ", ".join(sorted(_SPACES))
        raise GenomeError(f"unknown genome space {str(space)[:60]!r}; known spaces: {known}")
    try:
        genome = _SPACES[space].from_dict(data)  # its own messages for a malformed genome
    except GenomeError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError):
        check_plain(data)  # names the value no genome holds
        raise
    # Data from a file: nothing in it may reach Hydra or OmegaConf, whatever config it is copied into.
    check_plain(data)
    if validate:
        genome.validate()
    return genome
