"""Primitive sets of the GP tree spaces (docs/methods.md §7).

* ``glo`` (Gonzalez & Miikkulainen): ln, x², sqrt; +, -, ×, ÷; leaves y, yhat, the integers 1 and
  -1 (optionally the logit z). Random trees draw ln, y, yhat three times and sqrt twice as often
  as the rest. Loss of a sample: ``-(1/n) Σ_c f``.
* ``ngl`` (Next Generation Loss): +, -, ×, ÷, ×(-1), sqrt, log, exp, sin, cos; leaves yhat, y and
  ephemeral random constants R. Loss of a sample: ``(1/n) Σ_c f`` (the authors average over batch
  and classes).

Protected ops as in the NGL paper: ``log(|x|+ε)``, ``sqrt(|x|+ε)`` and ``x ÷ (y+ε)``; here the ε of
the division takes the sign of ``y`` (``copysign``), which is the paper's form for ``y >= 0`` and
avoids its pole at ``y = -ε`` when a coefficient makes ``y`` negative (BaikalCMA does). Equations
render it as ``x/(y+ε)``. GLO's own code left ops unprotected and gave NaN losses fitness 0; with
protected ops the same trees stay finite (Baikal differs by < 1e-6 relative where yhat >> ε).
ε is 1e-7 for GLO and 1e-8 for NGL (its paper; docs/methods.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from lossevo.errors import GenomeError
from lossevo.genome.ops import SYM_EPS, Op, binary, namespace, unary

LEAVES = ("y", "yhat", "logit", "const")


def _protected(eps: float) -> dict[str, Op]:
    return {
        "ln": unary("ln", f"torch.log(torch.abs(x) + {eps!r})", lambda x: sp.log(sp.Abs(x) + SYM_EPS)),
        "sqrt": unary("sqrt", f"torch.sqrt(torch.abs(x) + {eps!r})", lambda x: sp.sqrt(sp.Abs(x) + SYM_EPS)),
        "div": binary(
            "div", f"a / (b + torch.copysign(torch.full_like(b, {eps!r}), b))", lambda a, b: a / (b + SYM_EPS)
        ),
    }


_ARITHMETIC = {
    "add": binary("add", "torch.add(a, b)", lambda a, b: a + b, commutative=True),
    "sub": binary("sub", "torch.sub(a, b)", lambda a, b: a - b),
    "mul": binary("mul", "torch.mul(a, b)", lambda a, b: a * b, commutative=True),
}


@dataclass(frozen=True)
class PrimitiveSet:
    """Ops, leaves and generation weights of one tree space."""

    name: str
    eps: float
    ops: dict[str, Op]
    leaves: tuple[str, ...]  # leaves drawn by random generation ('const' = a constant leaf)
    weights: dict[str, float] = field(default_factory=dict)  # default weight 1
    constants: tuple[float, ...] = ()  # fixed constants to draw from (GLO's 1 and -1)
    const_range: tuple[float, float] = (-5.0, 5.0)  # ephemeral constants (when no fixed ones)
    scale: int = 1  # sign of the reduction: -(1/n) Σ_c for GLO
    namespace: dict = field(init=False, compare=False, repr=False)  # what its trees' sources run in

    def __post_init__(self) -> None:
        object.__setattr__(self, "namespace", namespace(self.ops.values()))

    def unary(self) -> list[str]:
        return [n for n, op in self.ops.items() if op.arity == 1]

    def binary(self) -> list[str]:
        return [n for n, op in self.ops.items() if op.arity == 2]

    def weight(self, name: str) -> float:
        return self.weights.get(name, 1.0)

    def op(self, name: str) -> Op:
        if name not in self.ops:
            raise GenomeError(
                f"unknown op {name!r} for the {self.name} primitive set (known: {', '.join(self.ops)})"
            )
        return self.ops[name]


def _glo() -> PrimitiveSet:
    eps = 1e-7
    protected = _protected(eps)
    ops = {
        "ln": protected["ln"],
        "square": unary("square", "torch.square(x)", lambda x: x**2),
        "sqrt": protected["sqrt"],
        **_ARITHMETIC,
        "div": protected["div"],
    }
    return PrimitiveSet(
        name="glo",
        eps=eps,
        ops=ops,
        leaves=("y", "yhat", "const"),
        weights={"ln": 3, "y": 3, "yhat": 3, "sqrt": 2},
        constants=(1.0, -1.0),
        scale=-1,
    )


def _ngl() -> PrimitiveSet:
    eps = 1e-8
    protected = _protected(eps)
    ops = {
        **_ARITHMETIC,
        "div": protected["div"],
        "neg": unary("neg", "torch.neg(x)", lambda x: -x),
        "sqrt": protected["sqrt"],
        "log": protected["ln"],
        "exp": unary("exp", "torch.exp(x)", sp.exp),
        "sin": unary("sin", "torch.sin(x)", sp.sin),
        "cos": unary("cos", "torch.cos(x)", sp.cos),
    }
    return PrimitiveSet(name="ngl", eps=eps, ops=ops, leaves=("yhat", "y", "const"), scale=1)


PRIMITIVE_SETS: dict[str, PrimitiveSet] = {"glo": _glo(), "ngl": _ngl()}


def primitive_set(name: str) -> PrimitiveSet:
    if name not in PRIMITIVE_SETS:
        raise GenomeError(f"unknown primitive set {name!r} (known: {', '.join(PRIMITIVE_SETS)})")
    return PRIMITIVE_SETS[name]
