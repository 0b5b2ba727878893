"""Multi-setting objectives (NGL's wins against CE, averaged runs) and RE's cheaper pre-screen."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lossevo.cli.commands import run_evolve
from lossevo.errors import LossevoError
from lossevo.execution.objectives import Objective, combine_mean, training_seeds, wins_fitness
from lossevo.results import Fitness, Status, StopReason
from lossevo.store.journal import Journal
from lossevo.verdict.phase import at_last_step

from .conftest import TINY, compose_config


def done(acc: float) -> Fitness:
    return Fitness(Status.DONE, acc, StopReason.COMPLETED, "", steps=10, seconds=1.0)


def test_wins_order_follows_ngl_rules() -> None:
    ref = [0.90, 0.80, 0.60]
    reference, _, _ = wins_fitness(ref, ref)
    one_small_win, wins, _ = wins_fitness([0.91, 0.70, 0.50], ref)
    one_big_win, _, _ = wins_fitness([0.95, 0.70, 0.50], ref)
    two_wins, _, _ = wins_fitness([0.905, 0.81, 0.10], ref)
    all_lost_slightly, _, _ = wins_fitness([0.89, 0.79, 0.59], ref)
    all_lost_badly, _, _ = wins_fitness([0.50, 0.40, 0.30], ref)
    assert reference == pytest.approx(0.5) and wins == 1
    # More wins beat a bigger improvement; equal wins: the larger mean improvement of the wins;
    # no wins: the smaller loss.
    assert two_wins > one_big_win > one_small_win > reference > all_lost_slightly > all_lost_badly


def test_combining_runs_and_settings() -> None:
    seeds = training_seeds(7, 2, 2)
    assert len(set(seeds)) == 4 and seeds[0] == 7
    labels = Objective(settings=[["dataset=a"], ["dataset=b"]]).labels()
    out = combine_mean([done(0.8), done(0.6), done(0.5), done(0.5)], labels, runs=2)
    assert out.fitness == pytest.approx(0.6) and out.parts == pytest.approx([0.7, 0.5])
    assert out.per_run == pytest.approx([0.65, 0.55]), "per run: the mean over the settings"
    assert out.seconds == 4.0 and out.steps == 40
    failed = Fitness.failure(StopReason.NONFINITE, "nan", seconds=1.0, steps=10)
    out = combine_mean([done(0.8), done(0.6), failed], labels, runs=2)
    assert (
        out.status == "failed" and out.detail == "dataset=b (run 1): nan" and out.stop_reason == "nonfinite"
    )
    wins = Objective(settings=[["dataset=a"], ["dataset=b"]], combine="wins")
    out = wins.score(combine_mean([done(0.9), done(0.4)], labels, runs=1), references=[0.8, 0.5])
    assert 1 < out.fitness < 2 and "1/2 wins" in out.detail
    with pytest.raises(LossevoError, match="needs the reference loss's accuracy"):
        wins.score(out, references=None)
    # The verdict reads validation at the last step: a combination's is the mean of its trainings'.
    a = done(0.8).with_changes(history=[(5, 0.8), (10, 0.7)])
    b = done(0.6).with_changes(history=[(5, 0.5), (10, 0.6)])
    out = combine_mean([a, b], labels, runs=1)
    assert out.fitness == pytest.approx(0.7) and out.history == [(5, 0.65), (10, pytest.approx(0.65))]
    assert at_last_step(out).fitness == pytest.approx(0.65)
    stopped = done(0.6).with_changes(history=[(5, 0.6)])  # checked other steps: the last checks' mean
    assert combine_mean([a, stopped], labels, runs=1).history == [(10, pytest.approx(0.65))]


def test_bad_objectives_are_refused() -> None:
    with pytest.raises(LossevoError, match="combine must be one of"):
        Objective.from_config(OmegaConf.create({"settings": [], "runs": 1, "combine": "median"}))
    with pytest.raises(LossevoError, match="list the settings"):
        Objective.from_config(OmegaConf.create({"settings": [], "runs": 1, "combine": "wins"}))


@pytest.mark.slow
def test_wins_search_compares_every_candidate_with_ce_per_setting(tmp_path: Path) -> None:
    overrides = [
        *TINY,
        "search=random",
        "search.budget=3",
        "surrogate.steps=30",
        "objective.settings=['augment=base','augment=cutout surrogate.steps=20']",
        "objective.combine=wins",
        "validate.runs=0",
    ]
    outcome = run_evolve(compose_config("evolve", overrides), run_dir=tmp_path, overrides=overrides)
    assert outcome.reference.fitness == pytest.approx(0.5)
    with Journal(tmp_path) as journal:
        parts = journal.reference("cross_entropy").parts
        rows = journal.candidates()
    assert len(parts) == 2 and all(0 < p <= 1 for p in parts)
    for row in rows:
        if row.status == "done":
            assert "wins against the reference" in row.detail and 0 < row.fitness < 3
    # Every setting's config is kept with the candidate, with its own seed.
    folder = tmp_path / "candidates" / "000001"
    first = OmegaConf.load(folder / "config.yaml")
    second = OmegaConf.load(folder / "config_1.yaml")
    assert first.augment.name != second.augment.name and second.surrogate.steps == 20
    assert first.seed != second.seed


@pytest.mark.slow
def test_prescreen_trains_the_initial_population_on_its_own_setting(tmp_path: Path) -> None:
    overrides = [
        *TINY,
        "search.budget=5",
        "search.initial_population=3",
        "search.population_size=2",
        "search.tournament_size=2",
        "surrogate.steps=30",
        "validate.runs=0",
        "search.prescreen='surrogate.steps=10 surrogate.val_every=10'",
    ]
    run_evolve(compose_config("evolve", overrides), run_dir=tmp_path, overrides=overrides)
    with Journal(tmp_path) as journal:
        rows = journal.candidates()
        assert journal.reference("cross_entropy@prescreen") is not None
        assert journal.reference("cross_entropy") is not None
    for row in rows:
        steps = OmegaConf.load(tmp_path / "candidates" / f"{row.id:06d}" / "config.yaml").surrogate.steps
        assert steps == (10 if row.phase == "initial" else 30)
        if row.status == "done":
            assert row.steps == steps
    assert {r.phase for r in rows} == {"initial", "evolve"}
    json.dumps([r.genome for r in rows])
