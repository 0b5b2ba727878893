"""TaylorGLO: a third-order Taylor expansion in (y, yhat) with 8 parameters (docs/methods.md §6).

In the factorial-free convention of the dissertation's Eq. 6.13, with ``d = yhat - λ1`` and
``e = y - λ0``:

    L = -(1/n) Σ_c [λ2 d + λ3 d² + λ4 d³ + λ5 e d + λ6 e d² + λ7 e² d]

(terms whose derivative in yhat is zero are dropped). Its gradient decomposes into
coefficients ``c1, ch, chh, chy, cy, cyy`` (Eq. 6.19-6.24), from which Theorem 6.5.1 tells, before
any training, that a loss is untrainable at the null epoch when both of its inequalities hold.
The authors' code checks only the second (``untrainable(n, both=False)``). The two are in fact
equivalent: subtracting ``c1 + ch/n + chh/n²`` from both sides of (6.44) gives (6.45); both are
computed here anyway, as the theorem states them.

Parameter order: lossevo follows Eq. 6.13 (λ0 the y-centre, λ1 the yhat-centre, λ2…λ7 the
coefficients). The authors' code holds the CMA-ES vector as ``[θ0 … θ5, centre_y, centre_yhat]``;
:func:`from_authors_vector` reorders one, so parameters copied from their code train the same loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np
import sympy as sp

from lossevo.errors import GenomeError
from lossevo.genome.base import Genome, PerSampleFn, register_space
from lossevo.genome.ops import SYM_Y, SYM_YHAT

PARAMETERS = 8


@register_space
@dataclass(frozen=True)
class TaylorGenome(Genome):
    """λ0…λ7 of a third-order TaylorGLO loss."""

    space: ClassVar[str] = "taylor"
    params: tuple[float, ...]
    sign: int = 1
    _cache: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def reduction(self) -> tuple[int, bool]:
        return -1, True

    def structure_problem(self) -> str | None:
        if len(self.params) != PARAMETERS:
            return f"TaylorGLO needs {PARAMETERS} parameters λ0…λ7, got {len(self.params)}"
        if not all(math.isfinite(v) for v in self.params):
            return "TaylorGLO parameters must be finite"
        return None

    # ----------------------------------------------------------------- compile
    def source(self, signed: bool = False, name: str = "loss_fn") -> str:
        """Python source of the per-sample function that :meth:`compile` executes (λ inlined)."""
        self.validate()
        l0, l1, l2, l3, l4, l5, l6, l7 = (repr(float(v)) for v in self.params)
        scale = -1.0 * (self.sign if signed else 1)
        return (
            f"def {name}(y, yhat, logits=None):\n"
            f"    d = yhat - ({l1})\n"
            f"    e = y - ({l0})\n"
            f"    value = d * (({l2}) + d * (({l3}) + ({l4}) * d) + e * (({l5}) + ({l6}) * d + ({l7}) * e))\n"
            f"    return {scale!r} * value.mean(dim=-1)\n"
        )

    def compile(self, signed: bool = False) -> PerSampleFn:
        slot = "fn_signed" if signed else "fn"
        if slot not in self._cache:
            namespace: dict[str, Any] = {}
            exec(compile(self.source(signed), "<taylor genome>", "exec"), namespace)
            self._cache[slot] = namespace["loss_fn"]
        return self._cache[slot]

    # ----------------------------------------------------------------- render
    def expression(self) -> sp.Expr:
        if "expr" not in self._cache:
            self.validate()
            l0, l1, l2, l3, l4, l5, l6, l7 = (sp.Float(v) for v in self.params)
            d, e = SYM_YHAT - l1, SYM_Y - l0
            self._cache["expr"] = l2 * d + l3 * d**2 + l4 * d**3 + l5 * e * d + l6 * e * d**2 + l7 * e**2 * d
        return self._cache["expr"]

    def canonical(self) -> str:
        return ",".join(f"{v:.12g}" for v in self.params)

    # ----------------------------------------------------------------- theory
    def gradient_coefficients(self) -> dict[str, float]:
        """``c1, ch, chh, chy, cy, cyy`` of Eq. 6.19-6.24."""
        l0, l1, l2, l3, l4, l5, l6, l7 = self.params
        return {
            "c1": -2 * l1 * l3 + 2 * l0 * l1 * l6 + l2 - l5 * l0 + l7 * l0**2 + 3 * l4 * l1**2,
            "ch": 2 * l3 - 2 * l6 * l0 - 6 * l4 * l1,
            "chh": 3 * l4,
            "chy": 2 * l6,
            "cy": -2 * l1 * l6 + l5 - 2 * l7 * l0,
            "cyy": l7,
        }

    def null_epoch_margins(self, n: int) -> tuple[float, float]:
        """Left minus right side of each inequality of Theorem 6.5.1 (6.44, 6.45) for ``n``
        classes; an inequality holds when its margin is negative."""
        c = self.gradient_coefficients()
        non_target = c["c1"] + c["ch"] / n + c["chh"] / n**2
        target = c["c1"] + c["cy"] + c["cyy"] + (c["ch"] + c["chy"]) / n + c["chh"] / n**2
        return target - (n - 1) * non_target, c["cy"] + c["cyy"] + c["chy"] / n - (n - 2) * non_target

    def null_epoch_inequalities(self, n: int) -> tuple[bool, bool]:
        """Whether each inequality of Theorem 6.5.1 holds for ``n`` classes."""
        first, second = self.null_epoch_margins(n)
        return first < 0, second < 0

    def untrainable(self, n: int, both: bool = True) -> bool:
        """Theorem 6.5.1: untrainable when both inequalities hold (``both=False``: the authors'
        code, which checks only the second)."""
        first, second = self.null_epoch_inequalities(n)
        return (first and second) if both else second

    # ----------------------------------------------------------------- data
    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "params": [float(v) for v in self.params], "sign": self.sign}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaylorGenome:
        unknown = set(data) - {"space", "params", "sign"}
        if unknown:
            raise GenomeError(f"taylor genome has unknown key(s): {', '.join(sorted(unknown))}")
        params = data.get("params")
        if not isinstance(params, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in params
        ):
            raise GenomeError(
                f"taylor genome: 'params' must be a list of {PARAMETERS} numbers, got {params!r}"
            )
        sign = data.get("sign", 1)
        if sign not in (1, -1):
            raise GenomeError(f"taylor genome: 'sign' must be 1 or -1, got {sign!r}")
        return cls(params=tuple(float(v) for v in params), sign=int(sign))

    def with_sign(self, sign: int) -> TaylorGenome:
        return replace(self, sign=sign, _cache={})


def taylor(params: list[float] | tuple[float, ...] | np.ndarray, sign: int = 1) -> TaylorGenome:
    genome = TaylorGenome(params=tuple(float(v) for v in params), sign=sign)
    genome.validate()
    return genome


def from_authors_vector(vector: list[float] | tuple[float, ...] | np.ndarray) -> TaylorGenome:
    """The genome of a parameter vector in the authors' order ``[θ0 … θ5, centre_y, centre_yhat]``."""
    v = [float(x) for x in vector]
    if len(v) != PARAMETERS:
        raise GenomeError(f"the authors' TaylorGLO vector has {PARAMETERS} numbers, got {len(v)}")
    return taylor([v[6], v[7], *v[:6]])


class TaylorSpace:
    """Random and mutated parameter vectors (CMA-ES, in the TaylorGLO strategy, does the search)."""

    name = "taylor"

    def __init__(self, sigma: float = 1.2, mutation_sigma: float = 0.3) -> None:
        self.sigma = sigma
        self.mutation_sigma = mutation_sigma

    def random(self, rng: np.random.Generator) -> TaylorGenome:
        return taylor(rng.normal(0.0, self.sigma, PARAMETERS))

    def mutate(self, genome: TaylorGenome, rng: np.random.Generator) -> TaylorGenome:
        return taylor(np.asarray(genome.params) + rng.normal(0.0, self.mutation_sigma, PARAMETERS))
