"""The stop rules every training obeys (one model, or K members of a population at once)."""

from __future__ import annotations

import math

import torch

from lossevo.config import compose_config
from lossevo.config.settings import SurrogateSettings, validated
from lossevo.results import Status, StopReason
from lossevo.training.rules import StopRules, training_result


def _settings(*overrides: str) -> SurrogateSettings:
    cfg = compose_config("train", ["surrogate.check_every=5", "surrogate.train_acc_window=4", *overrides])
    return validated(cfg.surrogate, SurrogateSettings, "surrogate")


def _steps(rules: StopRules, accuracy: list[list[float]], losses: list[list[float]] | None = None) -> None:
    for step, acc in enumerate(accuracy):
        loss = torch.tensor(losses[step]) if losses else torch.zeros(len(acc))
        rules.record(step, torch.tensor(acc), loss)


def test_a_nonfinite_loss_is_seen_at_the_next_check_and_only_for_its_member() -> None:
    settings = _settings("surrogate.precheck.step=null", "surrogate.early_stop.step=null")
    rules = StopRules(settings, 3, 20, "cpu")
    _steps(rules, [[0.5, 0.5, 0.5]] * 7, [[0.0, math.nan if s == 2 else 0.0, 0.0] for s in range(7)])
    assert rules.check(3, 20, [0, 1, 2]) == []  # between checks the flag stays on the device
    (stop,) = rules.check(5, 20, [0, 1, 2])
    assert (stop.member, stop.reason, stop.detail) == (1, StopReason.NONFINITE, "non-finite loss by step 5")
    assert rules.check(5, 20, [0, 2]) == []  # a frozen member is not asked again
    assert [s.member for s in rules.check(7, 7, [0, 1, 2])] == [1]  # the last step is a check too


def test_the_precheck_fails_and_the_early_stop_keeps_a_result_on_the_running_train_accuracy() -> None:
    settings = _settings(
        "surrogate.precheck.step=4",
        "surrogate.precheck.min_train_acc=0.5",
        "surrogate.early_stop.step=8",
        "surrogate.early_stop.min_train_acc=0.3",
    )
    rules = StopRules(settings, 3, 20, "cpu")
    # member 0 learns; 1 stays at 0.4 (below the pre-check's 0.5); 2 starts at 0.6, then drops to 0.2
    _steps(rules, [[0.6, 0.4, 0.6 if s < 4 else 0.2] for s in range(8)])
    assert rules.train_acc(4) == [0.6000000238418579, 0.4000000059604645, 0.6000000238418579]  # steps 0-3
    (stop,) = rules.check(4, 20, [0, 1, 2])
    assert (stop.member, stop.reason) == (1, StopReason.PRECHECK)
    assert stop.detail == "train accuracy 0.400 < 0.5 after 4 steps"
    assert rules.check(6, 20, [0, 2]) == []  # rules are read at their step only
    (stop,) = rules.check(8, 20, [0, 2])  # the window is steps 4-7
    assert (stop.member, stop.reason) == (2, StopReason.EARLY_STOP)


def test_how_a_training_ended_decides_its_result() -> None:
    common = {"steps": 10, "seconds": 1.0, "train_acc": 0.5, "history": [(10, 0.7)], "test_acc": 0.6}
    assert training_result(StopReason.COMPLETED, "", 0.7, **common).fitness == 0.7
    early = training_result(StopReason.EARLY_STOP, "slow", 0.4, **common)
    assert early.status == Status.DONE and early.fitness == 0.4  # keeps its best validation accuracy
    for reason in (StopReason.PRECHECK, StopReason.NONFINITE, StopReason.ERROR):
        failed = training_result(reason, "why", 0.7, **common)
        assert failed.status == Status.FAILED and failed.fitness is None and failed.detail == "why"
    assert (
        training_result(StopReason.COMPLETED, "", None, **common).status == Status.FAILED
    )  # never validated
