"""The operation set of the graph search space (Morgan & Hougen 2024, Tables 1 and 2).

Each op has a torch implementation (elementwise, differentiable, broadcasting) and a sympy
counterpart for rendering equations. The torch forms follow the authors' code, not the paper's
table, where the two differ (docs/methods.md §1):

* ``atan`` is the code's op; the paper's table says arctanh.
* ``dsoftsign`` is the code's ``1/(1+|x|)``; the true derivative of softsign is its square.
  We keep the code's form so the published losses (e.g. A0) reproduce the authors' numbers.
* ``softplus`` is ``ln(|1+e^x|+eps)``, computed as ``logaddexp(x, ln(1+eps))`` which is the same
  function without overflow for large x.
* ``ln``/``log10`` take ``|x|+eps``; ``sqrt`` takes ``|x|``; ``reciprocal`` and ``div`` add eps to
  the denominator without abs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp
import torch

EPS = 1e-7
_LN_1P_EPS = math.log1p(EPS)

# Symbols used when rendering equations; y and yhat are probabilities, hence nonnegative.
SYM_Y = sp.Symbol("y", nonnegative=True)
SYM_YHAT = sp.Symbol("yhat", nonnegative=True)
SYM_EPS = sp.Symbol("epsilon", positive=True)


def _named(name: str) -> type[sp.Function]:
    """An opaque sympy function that prints as ``name(x)`` and ``\\operatorname{name}(x)``."""
    return sp.Function(name)


_sigma = _named("sigma")
_softsign = _named("softsign")
_softplus = _named("softplus")
_i0e = _named("i0e")
_i1e = _named("i1e")
_log10 = _named("log10")


@dataclass(frozen=True)
class Op:
    name: str
    arity: int
    fn: Callable[..., torch.Tensor]
    sym: Callable[..., sp.Expr]
    commutative: bool = False


def _softplus_t(x: torch.Tensor) -> torch.Tensor:
    return torch.logaddexp(x, x.new_tensor(_LN_1P_EPS))


def _dsigmoid(x: torch.Tensor) -> torch.Tensor:
    s = torch.sigmoid(x)
    return s * (1 - s)


def _norm_div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return a / torch.sqrt(1 + b * b)


UNARY: tuple[Op, ...] = (
    Op("neg", 1, torch.neg, lambda x: -x),
    Op("ln", 1, lambda x: torch.log(torch.abs(x) + EPS), lambda x: sp.log(sp.Abs(x) + SYM_EPS)),
    Op(
        "log10",
        1,
        lambda x: torch.log10(torch.abs(x) + EPS),
        lambda x: _log10(sp.Abs(x) + SYM_EPS),
    ),
    Op("exp", 1, torch.exp, sp.exp),
    Op("abs", 1, torch.abs, sp.Abs),
    Op("sigmoid", 1, torch.sigmoid, _sigma),
    Op("dsoftsign", 1, lambda x: 1 / (1 + torch.abs(x)), lambda x: 1 / (1 + sp.Abs(x))),
    Op("softplus", 1, _softplus_t, _softplus),
    Op("erf", 1, torch.erf, sp.erf),
    Op("erfc", 1, torch.erfc, sp.erfc),
    Op("sin", 1, torch.sin, sp.sin),
    Op("sinh", 1, torch.sinh, sp.sinh),
    Op("asinh", 1, torch.asinh, sp.asinh),
    Op("tanh", 1, torch.tanh, sp.tanh),
    Op("atan", 1, torch.atan, sp.atan),
    Op("reciprocal", 1, lambda x: 1 / (x + EPS), lambda x: 1 / (x + SYM_EPS)),
    Op("bessel_i0", 1, torch.special.i0, lambda x: sp.besseli(0, x)),
    Op("bessel_i0e", 1, torch.special.i0e, _i0e),
    Op("bessel_i1", 1, torch.special.i1, lambda x: sp.besseli(1, x)),
    Op("bessel_i1e", 1, torch.special.i1e, _i1e),
    Op("relu", 1, torch.relu, lambda x: sp.Max(x, 0)),
    Op("min0", 1, lambda x: torch.clamp(x, max=0), lambda x: sp.Min(x, 0)),
    Op("square", 1, torch.square, lambda x: x**2),
    Op("sqrt", 1, lambda x: torch.sqrt(torch.abs(x)), lambda x: sp.sqrt(sp.Abs(x))),
    Op("softsign", 1, torch.nn.functional.softsign, _softsign),
    Op("dtanh", 1, lambda x: 1 - torch.tanh(x) ** 2, lambda x: 1 - sp.tanh(x) ** 2),
    Op("dsigmoid", 1, _dsigmoid, lambda x: _sigma(x) * (1 - _sigma(x))),
)

BINARY: tuple[Op, ...] = (
    Op("add", 2, torch.add, lambda a, b: a + b, commutative=True),
    Op("sub", 2, torch.sub, lambda a, b: a - b),
    Op("mul", 2, torch.mul, lambda a, b: a * b, commutative=True),
    Op("max", 2, torch.maximum, sp.Max, commutative=True),
    Op("min", 2, torch.minimum, sp.Min, commutative=True),
    Op("div", 2, lambda a, b: a / (b + EPS), lambda a, b: a / (b + SYM_EPS)),
    Op("norm_div", 2, _norm_div, lambda a, b: a / sp.sqrt(1 + b**2)),
)

OPS: dict[str, Op] = {op.name: op for op in UNARY + BINARY}
UNARY_NAMES: tuple[str, ...] = tuple(op.name for op in UNARY)
BINARY_NAMES: tuple[str, ...] = tuple(op.name for op in BINARY)

assert len(UNARY) == 27 and len(BINARY) == 7
