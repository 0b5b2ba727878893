"""Random search and TaylorGLO through ask/tell, with cheap deterministic objectives."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lossevo.errors import LossevoError
from lossevo.genome import GraphSpace, TaylorSpace, TreeSpace
from lossevo.strategies import RandomSearch, TaylorGLO


def run(strategy, objective, n: int) -> list[tuple]:
    log = []
    for _ in range(n):
        proposal = strategy.ask()
        assert proposal is not None, "inline: every ask is told before the next"
        fitness = objective(proposal.genome)
        strategy.tell(proposal.id, fitness)
        log.append((proposal.id, proposal.phase, proposal.genome.key(), fitness))
    return log


TARGET = np.array([0, 0, 0, 0, 0, 1.0, 0, 0])  # L = -(1/n) Σ y·yhat, a trainable loss


def taylor_objective(g) -> float | None:
    """An accuracy-like fitness in (0, 1]: closer to TARGET is better; far ones 'fail to train'."""
    distance = float(np.sum((np.asarray(g.params) - TARGET) ** 2))
    return None if distance > 60 else 1 / (1 + distance)


@pytest.mark.parametrize(
    "space", [GraphSpace(), TreeSpace(primitives="ngl"), TaylorSpace()], ids=["graph", "tree", "taylor"]
)
def test_random_search_draws_distinct_valid_losses(space) -> None:
    s = RandomSearch(space, seed=0)
    log = run(s, lambda g: 0.5, 15)
    assert [entry[0] for entry in log] == list(range(1, 16))
    assert len({entry[2] for entry in log}) == 15
    again = RandomSearch(space, seed=0)
    assert run(again, lambda g: 0.5, 15) == log


def test_random_search_state_round_trip() -> None:
    a = RandomSearch(GraphSpace(), seed=2)
    run(a, lambda g: 0.1, 5)
    b = RandomSearch(GraphSpace(), seed=7)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert run(a, lambda g: 0.1, 5) == run(b, lambda g: 0.1, 5)


def test_taylorglo_improves_and_screens_with_the_invariant() -> None:
    s = TaylorGLO(TaylorSpace(), seed=0)
    log = run(s, taylor_objective, 200)
    first = [f for *_, f in log[:20] if f is not None]
    last = [f for *_, f in log[-20:] if f is not None]
    assert np.mean(last) > np.mean(first), "CMA-ES moves towards better parameters"
    assert s.stats["invariant_rejections"] > 0 and s.stats["generations"] >= 5
    # Nothing it proposes is untrainable at the null epoch.
    checker = TaylorGLO(TaylorSpace(), seed=0)
    for _ in range(50):
        proposal = checker.ask()
        assert not proposal.genome.untrainable(10)
        checker.tell(proposal.id, taylor_objective(proposal.genome))


def test_taylorglo_population_and_exact_resume() -> None:
    assert TaylorGLO(TaylorSpace(), invariant=False).es.popsize == 20
    assert TaylorGLO(TaylorSpace()).es.popsize == 40
    a = TaylorGLO(TaylorSpace(), seed=3)
    run(a, taylor_objective, 33)  # stop in the middle of a generation
    b = TaylorGLO(TaylorSpace(), seed=4)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert run(a, taylor_objective, 60) == run(b, taylor_objective, 60)


def test_taylorglo_waits_for_its_generation() -> None:
    s = TaylorGLO(TaylorSpace(), seed=5, invariant=False, population=4)
    asked = [s.ask() for _ in range(4)]
    assert s.ask() is None, "a generation is told to CMA-ES only when complete"
    for p in asked:
        s.tell(p.id, 0.5)
    assert s.ask() is not None and s.stats["generations"] == 1


def test_taylorglo_needs_the_taylor_space() -> None:
    with pytest.raises(LossevoError, match="space=taylor"):
        TaylorGLO(GraphSpace())
