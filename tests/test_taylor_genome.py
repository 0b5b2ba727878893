"""TaylorGLO genomes: the expansion, its gradient coefficients and the null-epoch invariant."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lossevo.errors import GenomeError
from lossevo.genome import TaylorGenome, TaylorSpace, genome_from_dict
from lossevo.genome.taylor import taylor

LAMBDA = [0.3, -0.2, -1.5, 0.4, 0.1, -0.7, 0.25, 0.05]
params = st.lists(st.floats(-5, 5, allow_nan=False), min_size=8, max_size=8)


def test_compiles_to_the_factorial_free_expansion() -> None:
    y = np.array([[0.0, 1.0, 0.0], [0.1, 0.8, 0.1]])
    p = np.array([[0.2, 0.5, 0.3], [0.3, 0.3, 0.4]])
    l0, l1, l2, l3, l4, l5, l6, l7 = LAMBDA
    d, e = p - l1, y - l0
    want = -(l2 * d + l3 * d**2 + l4 * d**3 + l5 * e * d + l6 * e * d**2 + l7 * e**2 * d).mean(1)
    got = taylor(LAMBDA).compile()(torch.tensor(y), torch.tensor(p), None)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12)


@settings(max_examples=50, deadline=None)
@given(params)
def test_gradient_coefficients_decompose_the_gradient(lam: list[float]) -> None:
    """c1 + ch h + chh h² + chy h y + cy y + cyy y² is d/dh of the expansion (Eq. 6.18)."""
    g = taylor(lam)
    h, y = sp.symbols("h y")
    l0, l1, l2, l3, l4, l5, l6, l7 = (sp.Rational(v) for v in lam)
    d, e = h - l1, y - l0
    f = l2 * d + l3 * d**2 + l4 * d**3 + l5 * e * d + l6 * e * d**2 + l7 * e**2 * d
    c = g.gradient_coefficients()
    decomposed = c["c1"] + c["ch"] * h + c["chh"] * h**2 + c["chy"] * h * y + c["cy"] * y + c["cyy"] * y**2
    for hv, yv in ((0.1, 0.0), (0.7, 1.0), (0.4, 0.3)):
        exact = float(sp.diff(f, h).subs({h: hv, y: yv}))
        assert float(decomposed.subs({h: hv, y: yv})) == pytest.approx(exact, rel=1e-9, abs=1e-9)


def test_invariant_on_known_losses() -> None:
    # λ5 = 1: L = -(1/n) Σ y·ŷ raises the target probability: trainable.
    reward = taylor([0, 0, 0, 0, 0, 1, 0, 0])
    assert reward.null_epoch_inequalities(10) == (False, False) and not reward.untrainable(10)
    # λ5 = -1: L = (1/n) Σ y·ŷ lowers it: both inequalities hold.
    penalty = taylor([0, 0, 0, 0, 0, -1, 0, 0])
    assert penalty.null_epoch_inequalities(10) == (True, True) and penalty.untrainable(10)


@settings(max_examples=200, deadline=None)
@given(params, st.integers(2, 1000))
def test_the_two_inequalities_are_equivalent(lam: list[float], n: int) -> None:
    """(6.44) minus c1 + ch/n + chh/n² on both sides is (6.45): same margin, same verdict."""
    g = taylor(lam)
    first, second = g.null_epoch_margins(n)
    assert first == pytest.approx(second, rel=1e-9, abs=1e-9 * (1 + n * sum(map(abs, lam)) ** 3))
    if abs(first) > 1e-6 * (1 + n * sum(map(abs, lam)) ** 3):  # away from floating-point ties
        assert g.untrainable(n) == g.untrainable(n, both=False)


def test_round_trip_and_errors() -> None:
    g = taylor(LAMBDA, sign=-1)
    assert genome_from_dict(g.to_dict()) == g and genome_from_dict(g.to_dict()).key() == g.key()
    assert g.equation().startswith("L = (1/n) Σ_c [")  # sign -1 on -(1/n) Σ_c
    with pytest.raises(GenomeError, match="needs 8 parameters λ0…λ7, got 7"):
        genome_from_dict({"space": "taylor", "params": LAMBDA[:7]})
    with pytest.raises(GenomeError, match="must be a list of 8 numbers"):
        genome_from_dict({"space": "taylor", "params": "0 1 2"})
    with pytest.raises(GenomeError, match="must be finite"):
        TaylorGenome(params=(float("nan"),) * 8).validate()


def test_space_draws_around_zero() -> None:
    rng = np.random.default_rng(0)
    draws = np.array([TaylorSpace(sigma=1.2).random(rng).params for _ in range(2000)])
    assert abs(draws.mean()) < 0.05 and draws.std() == pytest.approx(1.2, rel=0.05)
    child = TaylorSpace().mutate(taylor(LAMBDA), rng)
    assert child.params != tuple(LAMBDA)


def test_a_vector_in_the_authors_order_is_reordered() -> None:
    from lossevo.genome.taylor import from_authors_vector

    # Theirs: [θ0 … θ5, centre_y, centre_yhat]; lossevo's λ: [centre_y, centre_yhat, θ0 … θ5].
    genome = from_authors_vector([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    assert genome.params == (0.7, 0.8, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
