"""The 34 ops of the graph space against independent numpy/scipy formulas (docs/methods.md §1)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.special as sps
import sympy as sp
import torch

from lossevo.genome.ops import BINARY_NAMES, EPS, OPS, SYM_EPS, UNARY_NAMES


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


UNARY_REFERENCE = {
    "neg": lambda x: -x,
    "ln": lambda x: np.log(np.abs(x) + EPS),
    "log10": lambda x: np.log10(np.abs(x) + EPS),
    "exp": np.exp,
    "abs": np.abs,
    "sigmoid": _sigmoid,
    "dsoftsign": lambda x: 1 / (1 + np.abs(x)),  # the authors' form (docs/methods.md §1)
    "softplus": lambda x: np.log(np.abs(1 + np.exp(x)) + EPS),
    "erf": sps.erf,
    "erfc": sps.erfc,
    "sin": np.sin,
    "sinh": np.sinh,
    "asinh": np.arcsinh,
    "tanh": np.tanh,
    "atan": np.arctan,
    "reciprocal": lambda x: 1 / (x + EPS),
    "bessel_i0": sps.i0,
    "bessel_i0e": sps.i0e,
    "bessel_i1": sps.i1,
    "bessel_i1e": sps.i1e,
    "relu": lambda x: np.maximum(x, 0),
    "min0": lambda x: np.minimum(x, 0),
    "square": np.square,
    "sqrt": lambda x: np.sqrt(np.abs(x)),
    "softsign": lambda x: x / (1 + np.abs(x)),
    "dtanh": lambda x: 1 - np.tanh(x) ** 2,
    "dsigmoid": lambda x: _sigmoid(x) * (1 - _sigmoid(x)),
}
BINARY_REFERENCE = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "max": np.maximum,
    "min": np.minimum,
    "div": lambda a, b: a / (b + EPS),
    "norm_div": lambda a, b: a / np.sqrt(1 + b**2),
}

X = np.array([-3.0, -1.3, -0.5, -1e-3, 0.0, 1e-7, 0.2, 0.5, 0.999, 1.0, 2.5, 4.0])
A, B = np.meshgrid(X, X)


def test_the_op_set_is_the_papers() -> None:
    assert len(UNARY_NAMES) == 27 and len(BINARY_NAMES) == 7
    assert set(UNARY_NAMES) == set(UNARY_REFERENCE)
    assert set(BINARY_NAMES) == set(BINARY_REFERENCE)


@pytest.mark.parametrize("name", UNARY_NAMES)
def test_unary_op_matches_reference(name: str) -> None:
    got = OPS[name].fn(torch.tensor(X, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, UNARY_REFERENCE[name](X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", BINARY_NAMES)
def test_binary_op_matches_reference(name: str) -> None:
    got = OPS[name].fn(torch.tensor(A), torch.tensor(B)).numpy()
    np.testing.assert_allclose(got, BINARY_REFERENCE[name](A, B), rtol=1e-12, atol=1e-12)


def test_softplus_does_not_overflow_where_the_naive_form_does() -> None:
    big = torch.tensor([100.0, 1000.0], dtype=torch.float32)
    assert torch.allclose(OPS["softplus"].fn(big), big)


@pytest.mark.parametrize("name", UNARY_NAMES + BINARY_NAMES)
def test_every_op_has_a_finite_gradient_on_typical_values(name: str) -> None:
    x = torch.tensor([0.05, 0.3, 0.7, 0.95], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.0, 1.0, 0.2, 0.9], dtype=torch.float64)
    out = OPS[name].fn(x) if OPS[name].arity == 1 else OPS[name].fn(x, y + 0.5)
    (grad,) = torch.autograd.grad(out.sum(), x)
    assert torch.isfinite(grad).all()


SYMPY_NUMPY = {
    "sigma": _sigmoid,
    "softsign": UNARY_REFERENCE["softsign"],
    "softplus": UNARY_REFERENCE["softplus"],
    "i0e": sps.i0e,
    "i1e": sps.i1e,
    "log10": np.log10,
    "besseli": sps.iv,
    "erf": sps.erf,
    "erfc": sps.erfc,
}


@pytest.mark.parametrize("name", UNARY_NAMES + BINARY_NAMES)
def test_rendered_formula_computes_the_same_values(name: str) -> None:
    """The sympy form used for equations is the same function as the torch form."""
    a, b = sp.symbols("a b", real=True)
    op = OPS[name]
    expr = op.sym(a) if op.arity == 1 else op.sym(a, b)
    fn = sp.lambdify((a, b, SYM_EPS), expr, modules=[SYMPY_NUMPY, "numpy"])
    got = np.broadcast_to(fn(A, B + 0.5, EPS), A.shape)
    ta, tb = torch.tensor(A), torch.tensor(B + 0.5)
    want = (op.fn(ta) if op.arity == 1 else op.fn(ta, tb)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
