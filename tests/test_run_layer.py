"""The run layer: typed results, the one composer of training configs, the executor loop, identity."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lossevo.config.composer import ConfigComposer
from lossevo.errors import LossevoError
from lossevo.execution.executors import InlineExecutor, run_tasks
from lossevo.execution.tasks import Task
from lossevo.losses import genome_loss_config
from lossevo.losses.published import GENOMES
from lossevo.results import Fitness, Status, StopReason
from lossevo.store.identity import check_identity, identity
from lossevo.store.journal import Journal

from .conftest import TINY, compose_config

SPACES = ["graph", "tree_glo", "tree_ngl", "taylor"]
OBJECTIVES = {
    "plain": [],
    "settings and runs": [
        "objective.settings=['augment=base','augment=cutout surrogate.steps=20']",
        "objective.runs=2",
    ],
    "wins": [
        "objective.settings=['augment=base','dataset=digits surrogate.steps=10']",
        "objective.combine=wins",
    ],
}


def test_fitness_is_typed_and_travels_as_plain_data() -> None:
    result = Fitness("done", 0.5, "completed", history=[(10, 0.5)])
    assert result.status is Status.DONE and result.stop_reason is StopReason.COMPLETED and result.ok
    assert result.status == "done" and result.to_dict()["stop_reason"] == "completed"
    assert pickle.loads(pickle.dumps(result)) == result  # to and from worker processes
    failed = Fitness.failure(StopReason.WORKER, "killed")
    assert not failed.ok and failed.fitness is None and failed.to_dict()["status"] == "failed"
    with pytest.raises(ValueError):
        Fitness("finished", 0.5, "completed")


@pytest.mark.parametrize("objective", list(OBJECTIVES))
@pytest.mark.parametrize("space", SPACES)
def test_fast_and_slow_paths_give_the_same_config(space: str, objective: str) -> None:
    overrides = [*TINY, f"space={space}", *OBJECTIVES[objective]]
    composer = ConfigComposer(compose_config("evolve", overrides), "evolve", overrides)
    cfg = compose_config("evolve", overrides)
    candidate = genome_loss_config("candidate_3", GENOMES["neuroloss1"])
    reference = OmegaConf.to_container(cfg.loss, resolve=True)
    settings = [[]] + [s.split() for s in cfg.objective.settings] + [["surrogate.steps=240"]]
    for extra in settings:
        for loss, info in (
            (candidate, {"id": 3, "parent": 1, "phase": "evolve", "dir": "x"}),
            (reference, None),
        ):
            fast = composer.training(loss, 1234, extra, info)
            assert composer._resolved_setting(extra) is not None, "no per-training interpolation: fast path"
            assert fast == composer.resolve(loss, 1234, extra, info)
            assert fast["seed"] == 1234 and fast["loss"] == loss and fast["candidate"] == info


def test_a_setting_that_reads_the_seed_takes_the_slow_path() -> None:
    overrides = [*TINY, "dataset.split_seed=${seed}"]
    composer = ConfigComposer(compose_config("evolve", overrides), "evolve", overrides)
    loss = genome_loss_config("candidate_1", GENOMES["bessel"])
    a, b = composer.training(loss, 5, (), None), composer.training(loss, 6, (), None)
    assert composer._resolved_setting(()) is None
    assert (a["dataset"]["split_seed"], b["dataset"]["split_seed"]) == (5, 6)


def test_the_users_loss_overrides_stay_with_the_reference_only() -> None:
    overrides = [*TINY, "loss=cross_entropy_ls", "loss.label_smoothing=0.2"]
    composer = ConfigComposer(compose_config("evolve", overrides), "evolve", overrides)
    setting = composer.setting(["surrogate.steps=99"])  # composed with the user's loss overrides
    assert setting.loss.label_smoothing == 0.2 and setting.surrogate.steps == 99
    candidate = genome_loss_config("candidate_1", GENOMES["bessel"])
    assert composer.training(candidate, 1, ["surrogate.steps=99"])["loss"] == candidate


def test_run_tasks_keeps_the_executor_full_and_takes_new_work_from_results(tiny_cfg) -> None:
    overrides = [*TINY, "surrogate.steps=5", "surrogate.val_every=5"]
    composer = ConfigComposer(compose_config("evolve", overrides), "evolve", overrides)
    loss = OmegaConf.to_container(compose_config("evolve", overrides).loss, resolve=True)
    queue = [Task(i, [composer.training(loss, i, ())], f"t{i}") for i in range(3)]
    seen: list[tuple[int, Status]] = []

    def on_result(task: Task, result: Fitness) -> None:
        seen.append((task.key, result.status))
        if task.key == 1:  # a result may make new work ready (a promotion, a retry)
            queue.append(Task(10, [composer.training(loss, 10, ())], "t10"))

    run_tasks(InlineExecutor(), lambda: queue.pop(0) if queue else None, on_result)
    assert seen == [(0, "done"), (1, "done"), (2, "done"), (10, "done")]


def test_identity_refusal_shows_the_differing_values(tmp_path: Path) -> None:
    first = compose_config("evolve", [*TINY, "trainer.precision=32-true"])
    second = compose_config("evolve", [*TINY, "trainer.precision=bf16-mixed", "executor=local"])
    with Journal(tmp_path) as journal:
        check_identity(journal, identity(first), "search")
        with pytest.raises(LossevoError, match=r"trainer.precision: '32-true' -> 'bf16-mixed'\)") as err:
            check_identity(journal, identity(second), "search")
        assert "executor" not in str(err.value), "where it runs is not part of what it measures"
        check_identity(journal, identity(second), "search", fresh=True)  # nothing trained yet: replaced
        assert journal.get_meta("identity")["trainer.precision"] == "bf16-mixed"


def test_a_builtin_datasets_folder_is_free_and_a_users_image_folder_is_not() -> None:
    moved = [compose_config("evolve", [*TINY, "dataset=cifar10", f"dataset.root=/data/{d}"]) for d in "ab"]
    assert identity(moved[0]) == identity(moved[1]), "CIFAR-10 is CIFAR-10 wherever it lies"
    mine = [compose_config("evolve", [*TINY, "dataset=image_folder", f"dataset.root=/d/{d}"]) for d in "ab"]
    assert identity(mine[0])["dataset.root"] == "/d/a" and identity(mine[0]) != identity(mine[1])


def test_a_kill_does_not_use_up_a_candidates_retry(tmp_path: Path) -> None:
    """The retry budget counts evaluations started by this process, not the journal's attempts
    (which a killed run raised for the candidate it was training)."""
    from collections import deque

    from lossevo.search.driver import Driver

    overrides = [*TINY, "search.budget=2", "driver.retries=1"]
    cfg = compose_config("evolve", overrides)
    driver = Driver(cfg, tmp_path, ConfigComposer(cfg, "evolve", overrides))
    try:
        proposal = driver.strategy.ask()
        driver._record(proposal)
        for _ in range(3):  # three runs killed while this candidate trained
            driver.journal.mark_running(proposal.id)
        assert driver.journal.candidate(proposal.id).attempts == 3
        task = driver._submitted(driver._candidate_task(driver.journal.candidate(proposal.id), 0))
        broken, queue = Fitness.failure(StopReason.ERROR, "CUDA error"), deque()
        retried = driver.retries.retried(task, broken, queue)
        assert retried and list(queue) == [task], "its one retry is still there"
        driver._submitted(queue.popleft())
        assert not driver.retries.retried(task, broken, queue), "and only one"
    finally:
        driver.journal.close()
        driver.tracker.finish()
