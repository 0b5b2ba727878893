"""Random search and TaylorGLO through ask/tell, with cheap deterministic objectives."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lossevo.errors import LossevoError
from lossevo.genome import GraphSpace, TaylorSpace, TreeGenome, TreeSpace, genome_from_dict
from lossevo.genome.integrity import IntegrityChecker
from lossevo.genome.tree import leaf, op
from lossevo.search.strategies import GLO, GeneticProgramming, RandomSearch, TaylorGLO


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


# ---------------------------------------------------------------------------- GP and GLO
def tree_objective(g) -> float:
    """Prefer small trees that use the product y·yhat (a cheap stand-in for accuracy)."""
    size = g.root.size()
    return 1 / size + (0.5 if "y*yhat" in str(g.expression()) else 0.0)


NGL_SPACE = TreeSpace(primitives="ngl")
GLO_SPACE = TreeSpace(primitives="glo", init_min_height=0, init_max_height=2, mutation="glo")


def test_gp_keeps_the_best_of_parents_and_children() -> None:
    s = GeneticProgramming(NGL_SPACE, seed=0, population=8)
    log = run(s, tree_objective, 8)
    assert all(phase == "g0" for _, phase, _, _ in log)
    best_initial = max(f for *_, f in log)
    run(s, tree_objective, 40)
    fitness = sorted((f for _, f in s.population), reverse=True)
    assert len(s.population) == 8 and fitness[0] >= best_initial
    assert len(s.archive) <= 8 and s.stats["generations"] >= 4


def test_gp_children_pass_the_integrity_check_and_resume_exactly() -> None:
    s = GeneticProgramming(NGL_SPACE, seed=1, population=6)
    log = run(s, tree_objective, 20)
    check = IntegrityChecker()
    assert all(check.check(genome_from_dict(dict(s.state_dict()["population"][i][0]))).ok for i in range(6))
    other = GeneticProgramming(NGL_SPACE, seed=9, population=6)
    other.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert run(s, tree_objective, 15) == run(other, tree_objective, 15)
    assert log


def test_glo_gp_then_cma_on_coefficients() -> None:
    s = GLO(GLO_SPACE, seed=2, population=10, gp_generations=2, cma_population=4)
    log = run(s, tree_objective, 60)
    phases = [phase for _, phase, _, _ in log]
    assert phases[0] == "gp0" and any(p.startswith("cma") for p in phases)
    assert s.stats["cached"] > 0, "elites and repeats are not retrained"
    cma = [entry for entry in log if entry[1].startswith("cma")]
    assert len({key for _, _, key, _ in cma}) > 1, "CMA-ES varies the coefficients of one tree"
    other = GLO(GLO_SPACE, seed=5, population=10, gp_generations=2, cma_population=4)
    other.load_state_dict(json.loads(json.dumps(s.state_dict())))
    assert run(s, tree_objective, 10) == run(other, tree_objective, 10)


def test_glo_scores_trees_without_y_as_zero_without_training() -> None:
    s = GLO(GLO_SPACE, seed=3, population=10, gp_generations=1)
    assert s.presume(TreeGenome(op("ln", leaf("yhat")), primitives="glo")) == 0.0
    with pytest.raises(LossevoError, match="space=tree_glo"):
        GLO(GraphSpace())
    with pytest.raises(LossevoError, match="space=tree_ngl"):
        GeneticProgramming(TaylorSpace())


# ---------------------------------------------------------------------------- CMA-ES state, configs
def test_cma_state_is_plain_data_that_rebuilds_the_optimiser_exactly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The journal holds how CMA-ES was made and what it was told, never a pickle (which runs code
    when loaded): a resume rebuilds it and continues exactly; a lossevo 0.1 pickle is refused unless
    the user trusts the file."""
    import base64
    import pickle

    import cma

    from lossevo.search.strategies import cma_es

    s = TaylorGLO(TaylorSpace(), seed=3)
    run(s, taylor_objective, 45)  # one generation of 40 told, the next one out
    state = json.loads(json.dumps(s.state_dict()))
    assert state["es"]["cma"] == cma.__version__ and "pickle" not in state["es"]
    assert len(state["es"]["told"]) == 1 and state["es"]["asked"] == 2
    assert state["es"]["told"] and all(isinstance(f, float) for g in state["es"]["told"] for f in g)
    other = TaylorGLO(TaylorSpace(), seed=4)
    other.load_state_dict(state)
    assert run(other, taylor_objective, 10) == run(s, taylor_objective, 10)
    old = {
        "cma": cma.__version__,
        "pickle": base64.b64encode(pickle.dumps(cma_es.new_cma([0.0] * 8, 1.2, 20, 0))).decode(),
    }
    with pytest.raises(
        LossevoError, match=r"saved by lossevo 0\.1 as a pickle, which can run code.*LOSSEVO_TRUST_PICKLES=1"
    ):
        cma_es.SeededCMA.from_state(old)
    monkeypatch.setenv("LOSSEVO_TRUST_PICKLES", "1")
    trusted = cma_es.SeededCMA.from_state(old)
    assert trusted.popsize == 20 and "pickle" in trusted.state()  # saved as it was loaded
    unreadable = {"cma": "0.0.1", "pickle": "bm90IGEgcGlja2xl"}  # what another version may not read
    with pytest.raises(LossevoError, match=r"written by cma 0\.0\.1 .* `pip install 'cma==0\.0\.1'`"):
        cma_es.SeededCMA.from_state(unreadable)


def test_strategies_choose_their_natural_space_and_taylorglo_counts_the_datasets_classes() -> None:
    from omegaconf import OmegaConf

    from lossevo.config import compose_config
    from lossevo.search.driver import build_strategy

    cases = {"gp": "ngl", "glo": "glo"}
    for search, primitives in cases.items():
        cfg = compose_config("evolve", [f"search={search}"])
        assert cfg.space.primitives == primitives
    assert compose_config("evolve", ["search=gp", "space=tree_glo"]).space.primitives == "glo", "space= wins"
    gp = compose_config("evolve", ["search=gp"])
    assert OmegaConf.to_container(gp.search, resolve=True)["integrity"]["novelty_threshold"] == 0.0
    cfg = compose_config("evolve", ["search=taylorglo", "dataset=cifar100"])
    assert cfg.space._target_.endswith("TaylorSpace")
    strategy = build_strategy(cfg)
    assert isinstance(strategy, TaylorGLO) and strategy.classes == 100
