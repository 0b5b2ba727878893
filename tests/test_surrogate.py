"""The surrogate on scikit-learn's digits: training, fitness, early-stopping rules, failures."""

from __future__ import annotations

import math

import pytest
import torch

from lossevo.errors import LossevoError
from lossevo.losses import get_loss
from lossevo.losses.base import Loss
from lossevo.training.schedules import warmup_cosine
from lossevo.training.surrogate import Job, Surrogate

from .conftest import TINY, compose_config


class Constant(Loss):
    """Has no gradient: the model never learns (train accuracy stays near chance)."""

    def per_sample(self, y, yhat, logits):
        return 0.0 * logits.sum(dim=1)


class NaNAfter(Loss):
    """Cross-entropy until the k-th call, then NaN."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.k, self.calls = k, 0

    def per_sample(self, y, yhat, logits):
        self.calls += 1
        values = -(y * torch.log_softmax(logits, 1)).sum(1)
        return values * math.nan if self.calls > self.k else values


class RecordsProgress(Loss):
    """Cross-entropy that records the training progress it is given at each step."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[float] = []

    def per_sample(self, y, yhat, logits):
        self.seen.append(self.progress)
        return -(y * torch.log_softmax(logits, 1)).sum(1)


class Raises(Loss):
    def per_sample(self, y, yhat, logits):
        raise RuntimeError("boom")


def surrogate(*overrides: str) -> Surrogate:
    return Surrogate(compose_config("evolve", [*TINY, *overrides]))


def test_cross_entropy_learns_digits_and_is_reproducible() -> None:
    s = surrogate("surrogate.steps=120")
    first = s.train(Job(get_loss("cross_entropy"), seed=7))
    assert first.ok and first.stop_reason == "completed" and first.steps == 120
    assert first.fitness > 0.85
    assert [step for step, _ in first.history] == [30, 60, 90, 120]
    assert first.fitness == max(acc for _, acc in first.history)
    again = s.train(Job(get_loss("cross_entropy"), seed=7))
    assert again.history == first.history and again.train_acc == first.train_acc
    other = s.train(Job(get_loss("cross_entropy"), seed=8))
    assert other.history != first.history


def test_published_losses_train(tiny_cfg) -> None:
    s = Surrogate(tiny_cfg)
    for name in ("neuroloss1", "bessel", "baikal", "ngl"):
        result = s.train(Job(get_loss(name), seed=0))
        assert result.ok and result.fitness > 0.3  # chance is 0.1, (name, result)


def test_last_step_is_validated_when_not_a_multiple() -> None:
    result = surrogate("surrogate.steps=50", "surrogate.val_every=20").train(
        Job(get_loss("cross_entropy"), 0)
    )
    assert [s for s, _ in result.history] == [20, 40, 50]


def test_nonfinite_loss_fails_the_candidate() -> None:
    result = surrogate("surrogate.check_every=5").train(Job(NaNAfter(12), 0))
    assert result.status == "failed" and result.fitness is None
    assert result.stop_reason == "nonfinite" and result.steps <= 15


def test_precheck_rejects_a_loss_that_does_not_learn() -> None:
    s = surrogate(
        "surrogate.precheck.step=20", "surrogate.precheck.min_train_acc=0.37", "surrogate.train_acc_window=10"
    )
    result = s.train(Job(Constant(), 0))
    assert result.status == "failed" and result.stop_reason == "precheck" and result.steps == 20
    assert "after 20 steps" in result.detail
    assert s.train(Job(get_loss("cross_entropy"), 0)).ok  # CE passes the same pre-check


def test_early_stop_keeps_the_best_validation_accuracy() -> None:
    s = surrogate(
        "surrogate.early_stop.step=40", "surrogate.early_stop.min_train_acc=0.25", "surrogate.val_every=20"
    )
    result = s.train(Job(Constant(), 0))
    assert result.status == "done" and result.stop_reason == "early_stop" and result.steps == 40
    assert result.fitness is not None and result.fitness == max(a for _, a in result.history)


def test_an_exception_in_the_loss_is_a_failed_candidate(tiny_cfg) -> None:
    result = Surrogate(tiny_cfg).train(Job(Raises(), 0))
    assert result.status == "failed" and result.stop_reason == "error" and "boom" in result.detail


def test_losses_receive_the_training_progress(tiny_cfg) -> None:
    loss = RecordsProgress()
    Surrogate(tiny_cfg).train(Job(loss, 0))
    assert len(loss.seen) == 60 and loss.seen[0] == 0.0 and loss.seen[-1] == 1.0
    assert loss.seen == sorted(loss.seen)


def test_test_accuracy_for_final_training(tiny_cfg) -> None:
    result = Surrogate(tiny_cfg).train(Job(get_loss("cross_entropy"), 0), test=True)
    assert 0.5 < result.test_acc <= 1.0


def test_bad_recipe_is_a_clear_error() -> None:
    with pytest.raises(LossevoError, match="bad `surrogate` config"):
        Surrogate(compose_config("evolve", [*TINY, "+surrogate.stesp=3"]))
    with pytest.raises(LossevoError, match=r"model.depth is not an option of model \(lossevo.models"):
        Surrogate(compose_config("evolve", [*TINY, "+model.depth=3"]))


def test_warmup_cosine() -> None:
    f = warmup_cosine(100, warmup_steps=10)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0)
    assert all(f(i) >= f(i + 1) for i in range(10, 100))


def test_fashion_mnist_surrogate_runs_on_real_data() -> None:
    pytest.importorskip("torchvision")
    from lossevo.data.idx import DEBIAN_FASHION_MNIST

    if not DEBIAN_FASHION_MNIST.is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist (.ci/run installs it)")
    cfg = compose_config(
        "evolve",
        [
            "surrogate.steps=80",
            "surrogate.val_every=40",
            "surrogate.schedule.warmup_steps=5",
            "dataset.val_size=1000",
            "dataset.train_size=5000",
            "trainer.accelerator=cpu",
            "logger=none",
        ],
    )
    result = Surrogate(cfg).train(Job(get_loss("cross_entropy"), 0))
    assert result.ok and result.fitness > 0.3  # chance is 0.1
