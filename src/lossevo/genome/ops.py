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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

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
    """One op: its torch body (the text of a function of ``x``, or of ``a`` and ``b``, that uses only
    ``torch`` and inlines its constants) and its sympy form. Training runs the function compiled from
    :meth:`definition`, and ``lossevo export`` copies the same text into a standalone file, so the
    two compute the same thing by construction."""

    name: str
    arity: int
    body: str  # e.g. "return torch.log(torch.abs(x) + 1e-07)"; may have several lines
    sym: Callable[..., sp.Expr]
    commutative: bool = False
    function_name: str = field(init=False, compare=False, repr=False)  # _ln: never a builtin (max)
    fn: Callable[..., torch.Tensor] = field(init=False, compare=False, repr=False)  # compiled once

    def __post_init__(self) -> None:
        object.__setattr__(self, "function_name", f"_{self.name}")
        namespace: dict[str, Any] = {"torch": torch}
        exec(compile(self.definition(), f"<op {self.name}>", "exec"), namespace)
        object.__setattr__(self, "fn", namespace[self.function_name])

    def definition(self) -> str:
        """Python source of the op as a module-level function."""
        args = "x" if self.arity == 1 else "a, b"
        lines = self.body.splitlines()
        return f"def {self.function_name}({args}):\n" + "".join(f"    {line}\n" for line in lines)


def namespace(ops: Iterable[Op]) -> dict[str, Callable[..., torch.Tensor]]:
    """What a generated source runs in: each op's compiled function under its function name."""
    return {op.function_name: op.fn for op in ops}


def unary(name: str, expression: str, sym: Callable[..., sp.Expr]) -> Op:
    """An op of one argument whose body returns ``expression`` (in ``x``)."""
    return Op(name, 1, f"return {expression}", sym)


def binary(name: str, expression: str, sym: Callable[..., sp.Expr], commutative: bool = False) -> Op:
    """An op of two arguments whose body returns ``expression`` (in ``a`` and ``b``)."""
    return Op(name, 2, f"return {expression}", sym, commutative)


UNARY: tuple[Op, ...] = (
    unary("neg", "torch.neg(x)", lambda x: -x),
    unary("ln", f"torch.log(torch.abs(x) + {EPS!r})", lambda x: sp.log(sp.Abs(x) + SYM_EPS)),
    unary("log10", f"torch.log10(torch.abs(x) + {EPS!r})", lambda x: _log10(sp.Abs(x) + SYM_EPS)),
    unary("exp", "torch.exp(x)", sp.exp),
    unary("abs", "torch.abs(x)", sp.Abs),
    unary("sigmoid", "torch.sigmoid(x)", _sigma),
    unary("dsoftsign", "1 / (1 + torch.abs(x))", lambda x: 1 / (1 + sp.Abs(x))),
    # ln(|1 + e^x| + eps) without overflow for large x.
    unary("softplus", f"torch.logaddexp(x, x.new_tensor({_LN_1P_EPS!r}))", _softplus),
    unary("erf", "torch.erf(x)", sp.erf),
    unary("erfc", "torch.erfc(x)", sp.erfc),
    unary("sin", "torch.sin(x)", sp.sin),
    unary("sinh", "torch.sinh(x)", sp.sinh),
    unary("asinh", "torch.asinh(x)", sp.asinh),
    unary("tanh", "torch.tanh(x)", sp.tanh),
    unary("atan", "torch.atan(x)", sp.atan),
    unary("reciprocal", f"1 / (x + {EPS!r})", lambda x: 1 / (x + SYM_EPS)),
    unary("bessel_i0", "torch.special.i0(x)", lambda x: sp.besseli(0, x)),
    unary("bessel_i0e", "torch.special.i0e(x)", _i0e),
    unary("bessel_i1", "torch.special.i1(x)", lambda x: sp.besseli(1, x)),
    unary("bessel_i1e", "torch.special.i1e(x)", _i1e),
    unary("relu", "torch.relu(x)", lambda x: sp.Max(x, 0)),
    unary("min0", "torch.clamp(x, max=0)", lambda x: sp.Min(x, 0)),
    unary("square", "torch.square(x)", lambda x: x**2),
    unary("sqrt", "torch.sqrt(torch.abs(x))", lambda x: sp.sqrt(sp.Abs(x))),
    unary("softsign", "torch.nn.functional.softsign(x)", _softsign),
    unary("dtanh", "1 - torch.tanh(x) ** 2", lambda x: 1 - sp.tanh(x) ** 2),
    Op("dsigmoid", 1, "s = torch.sigmoid(x)\nreturn s * (1 - s)", lambda x: _sigma(x) * (1 - _sigma(x))),
)

BINARY: tuple[Op, ...] = (
    binary("add", "torch.add(a, b)", lambda a, b: a + b, commutative=True),
    binary("sub", "torch.sub(a, b)", lambda a, b: a - b),
    binary("mul", "torch.mul(a, b)", lambda a, b: a * b, commutative=True),
    binary("max", "torch.maximum(a, b)", sp.Max, commutative=True),
    binary("min", "torch.minimum(a, b)", sp.Min, commutative=True),
    binary("div", f"a / (b + {EPS!r})", lambda a, b: a / (b + SYM_EPS)),
    binary("norm_div", "a / torch.sqrt(1 + b * b)", lambda a, b: a / sp.sqrt(1 + b**2)),
)

OPS: dict[str, Op] = {op.name: op for op in UNARY + BINARY}
NAMESPACE = namespace(OPS.values())  # the graph space's sources run in a copy of it
UNARY_NAMES: tuple[str, ...] = tuple(op.name for op in UNARY)
BINARY_NAMES: tuple[str, ...] = tuple(op.name for op in BINARY)

assert len(UNARY) == 27 and len(BINARY) == 7
