"""The stop rules of a training, for one model or K members of a population at once.

Three rules end a training early (docs/methods.md §3): a loss that turns non-finite (the flag
is accumulated on the device and read back every ``check_every`` steps and at the last step, so
a GPU syncs rarely), the *pre-check* (train accuracy below ``precheck.min_train_acc`` at
``precheck.step``: the candidate fails) and the *early stop* (below ``early_stop.min_train_acc`` at
``early_stop.step``: training stops, the candidate keeps its best validation accuracy). Train
accuracy is the mean over the last ``train_acc_window`` steps.

:class:`~lossevo.training.classifier.ClassifierModule` (one model) and
:class:`~lossevo.training.population.PopulationModule` (K stacked members) both keep one
:class:`StopRules` and ask it after every step which members stop; a lone training is a
population of one. :func:`training_result` turns how a training ended into its Fitness, the same
way for both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lossevo.config.settings import SurrogateSettings
from lossevo.results import Fitness, Status, StopReason

# A training that ends for one of these reasons has no fitness (the others keep their best
# validation accuracy).
FAILING = (StopReason.NONFINITE, StopReason.PRECHECK, StopReason.ERROR)


@dataclass(frozen=True)
class Stop:
    """Member ``member`` stops after this step, for ``reason``."""

    member: int
    reason: StopReason
    detail: str


class StopRules:
    """Per-step train accuracy and the non-finite flag of ``members`` trainings of ``steps`` steps,
    and the rules read from them."""

    def __init__(self, settings: SurrogateSettings, members: int, steps: int, device: torch.device) -> None:
        self.settings = settings
        self._accuracy = torch.zeros(members, max(steps, 1), device=device)
        self._nonfinite = torch.zeros(members, dtype=torch.bool, device=device)

    @torch.no_grad()
    def record(self, step: int, accuracy: torch.Tensor, loss: torch.Tensor) -> None:
        """One step's train accuracy and loss value of every member (``[members]``, or scalars for
        one), kept on the device."""
        self._accuracy[:, min(step, self._accuracy.shape[1] - 1)] = accuracy
        self._nonfinite |= ~torch.isfinite(loss)

    def train_acc(self, step: int) -> list[float]:
        """Every member's mean train accuracy over the window of steps before ``step``."""
        window = max(1, self.settings.train_acc_window)
        return self._accuracy[:, max(0, step - window) : step].mean(dim=1).tolist()

    def check(self, step: int, last_step: int, active: Sequence[int]) -> list[Stop]:
        """The ``active`` members that stop after ``step`` optimiser steps (of ``last_step``), and
        why: a non-finite loss first, then the pre-check, then the early stop."""
        s = self.settings
        stops: list[Stop] = []
        if step % s.check_every == 0 or step == last_step:
            flags = self._nonfinite.tolist()
            stops = [
                Stop(k, StopReason.NONFINITE, f"non-finite loss by step {step}") for k in active if flags[k]
            ]
        stopped = {stop.member for stop in stops}
        for rule, reason in ((s.precheck, StopReason.PRECHECK), (s.early_stop, StopReason.EARLY_STOP)):
            if rule.step is None or step != rule.step:
                continue
            accuracy = self.train_acc(step)
            for k in active:
                if k not in stopped and accuracy[k] < rule.min_train_acc:
                    detail = f"train accuracy {accuracy[k]:.3f} < {rule.min_train_acc} after {step} steps"
                    stops.append(Stop(k, reason, detail))
                    stopped.add(k)
        return stops


def training_result(
    reason: StopReason,
    detail: str,
    best_val_acc: float | None,
    *,
    steps: int,
    seconds: float,
    train_acc: float | None,
    history: list[tuple[int, float]],
    test_acc: float | None,
    test_hits: str | None = None,
) -> Fitness:
    """The Fitness of a training that ended for ``reason``: its best validation accuracy, or a
    failure when the rules say it fails (or it never validated)."""
    if reason == StopReason.ERROR:
        return Fitness.failure(reason, detail, seconds=seconds, steps=steps)
    failed = reason in FAILING or best_val_acc is None
    return Fitness(
        status=Status.FAILED if failed else Status.DONE,
        fitness=None if failed else best_val_acc,
        stop_reason=reason,
        detail=detail,
        steps=steps,
        seconds=seconds,
        train_acc=train_acc,
        history=list(history),
        test_acc=test_acc,
        test_hits=test_hits,
    )
