"""Every search space plugs into the same search: regularized evolution on digits, in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from lossevo.cli.commands import run_evolve
from lossevo.genome import genome_from_dict
from lossevo.store.journal import Journal

from .conftest import TINY, compose_config

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("space", ["graph", "tree_glo", "tree_ngl", "taylor"])
def test_regularized_evolution_searches_each_space(space: str, tmp_path: Path) -> None:
    overrides = [
        *TINY,
        f"space={space}",
        "search.budget=6",
        "search.initial_population=3",
        "search.population_size=2",
        "search.tournament_size=2",
        "surrogate.steps=30",
        "validate.runs=0",
    ]
    outcome = run_evolve(compose_config("evolve", overrides), run_dir=tmp_path, overrides=overrides)
    with Journal(tmp_path) as journal:
        rows = journal.candidates()
    expected = {"graph": "graph", "tree_glo": "tree", "tree_ngl": "tree", "taylor": "taylor"}[space]
    assert len(rows) == 6 and {r.genome["space"] for r in rows} == {expected}
    assert all(r.status in ("done", "failed") for r in rows)
    if space.startswith("tree"):
        assert {r.genome["primitives"] for r in rows} == {space.split("_")[1]}
    assert outcome.best, "something trained"
    best = genome_from_dict(outcome.best[0].genome)
    assert (tmp_path / "conf" / "loss" / "best_1.yaml").is_file() and best.equation()


@pytest.mark.parametrize(
    ("space", "search", "extra"),
    [
        ("graph", "random", []),
        ("tree_ngl", "random", []),
        ("taylor", "taylorglo", ["search.population=4"]),
        ("tree_ngl", "gp", ["search.population=3"]),
        ("tree_glo", "glo", ["search.population=4", "search.gp_generations=1", "search.cma_population=2"]),
    ],
)
def test_other_strategies_run_through_the_driver(
    space: str, search: str, extra: list[str], tmp_path: Path
) -> None:
    overrides = [
        *TINY,
        f"space={space}",
        f"search={search}",
        "search.budget=6",
        "surrogate.steps=30",
        "validate.runs=0",
        *extra,
    ]
    outcome = run_evolve(compose_config("evolve", overrides), run_dir=tmp_path, overrides=overrides)
    with Journal(tmp_path) as journal:
        rows = journal.candidates()
        state = journal.strategy_state()
    assert len(rows) == 6 and all(r.status in ("done", "failed") for r in rows)
    assert state is not None and outcome.best
