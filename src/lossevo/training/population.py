"""Population training: up to K candidate losses trained in one pass over the same batches.

A small surrogate leaves an accelerator mostly idle: nearly all of a step's time is fixed cost.
Here K members, each with its own model (initialised from its own seed) and its own loss, train
together as one stacked model (:mod:`lossevo.models.stacked`: the members' channels side by side,
HFTA-style, for the built-in surrogates; ``vmap`` over stacked parameters for other models), so a
step's fixed cost is paid once per K members. Members share the data seed (batch order,
augmentation, one mixed batch for mixup/CutMix).

Members are independent. Adam, SGD and the other elementwise optimisers take on the stacked
parameters exactly the step each member would take alone; BatchNorm's statistics are per
channel, so per member. Each member keeps its own pre-check, early stop, non-finite check,
validation history and stop reason. A member that stops (or whose loss raises) is frozen: its
loss leaves the sum that is backpropagated and its parameters and buffers are put back after
every later step, so it ends where it stopped and never touches the others. The pass ends when
every member has. In float64 a member ends with the parameters and accuracy of its lone training
(``tests/test_population.py``); models with dropout draw other masks than alone. A member's
Fitness means what a lone training's means; its ``seconds`` is its share of the pass.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from lossevo.config.settings import SurrogateSettings
from lossevo.data import OrderedBatches
from lossevo.data.augment import AugmentRNG, Pipeline
from lossevo.losses.base import Loss, full_precision, targets_as_probabilities
from lossevo.models.stacked import ChannelStack, Stack, stack_kind
from lossevo.results import Fitness, StopReason, pack_hits
from lossevo.training.classifier import optimisation
from lossevo.training.rules import StopRules, training_result

log = logging.getLogger(__name__)

# Optimisers whose update is elementwise: one step on stacked parameters = K separate steps.
ELEMENTWISE_OPTIMIZERS = (
    "SGD",
    "Adam",
    "AdamW",
    "Adamax",
    "NAdam",
    "RAdam",
    "RMSprop",
    "Adagrad",
    "Adadelta",
)


@dataclass
class Member:
    """One member's record of the pass (what a lone ClassifierModule records)."""

    best_val_acc: float | None = None
    history: list[tuple[int, float]] = field(default_factory=list)
    stop_reason: StopReason = StopReason.COMPLETED
    stop_detail: str = ""
    train_acc: float | None = None
    test_acc: float | None = None
    test_hits: str | None = None  # which test images it got right (results.pack_hits)
    steps: int = 0
    frozen: bool = False


class PopulationModule(pl.LightningModule):
    """Trains ``models[k]`` with ``losses[k]`` for every k in one pass over the batches."""

    mean: torch.Tensor  # per-channel normalisation, registered as buffers (they follow the device)
    std: torch.Tensor

    def __init__(
        self,
        stack: Stack,
        losses: Sequence[nn.Module],
        settings: SurrogateSettings,
        optimizer: Callable[..., torch.optim.Optimizer],
        schedule: Callable[[int], Callable[[int], float]] | None,
        augment: Pipeline,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        data_seed: int,
        val: OrderedBatches,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        # Channels-last applies to side-by-side members (vmap moves the member dimension itself).
        self.stack = stack.channels_last() if channels_last and isinstance(stack, ChannelStack) else stack
        self.losses = nn.ModuleList(losses)
        self.settings = settings
        self._optimizer = optimizer
        self._schedule = schedule
        self.augment = augment
        self.data_seed = data_seed
        self._val = val
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.members = [Member() for _ in range(stack.size)]
        self._snapshots: dict[int, dict[str, torch.Tensor]] = {}

    @property
    def size(self) -> int:
        return len(self.members)

    def member_state(self, k: int) -> dict[str, torch.Tensor]:
        """Member ``k``'s parameters and buffers, named as in its model's ``state_dict`` (a frozen
        member's as it stopped, counters shared by the stack included)."""
        if k in self._snapshots:
            return {n: t.clone() for n, t in self._snapshots[k].items()}
        return {n: t[k].detach().clone() for n, t in self.stack.member_tensors().items()}

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    # ------------------------------------------------------------------ training
    def on_fit_start(self) -> None:
        self._rng = AugmentRNG(self.data_seed + 7, self.device)  # as a lone training's mixing RNG
        self._dropout: float | None = None
        self._rules = StopRules(self.settings, self.size, self.trainer.max_steps, self.device)
        self.stack.train()

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        x, y = batch
        dropout = self.augment.dropout_at(self.global_step)
        if dropout is not None and dropout != self._dropout:
            self.stack.set_dropout(dropout)
            self._dropout = dropout
        x, y = self.augment.mix(x, y, self._rng)
        logits = self.stack(self._normalise(x))  # [K, batch, classes]
        losses = self._member_losses(logits, y)
        with torch.no_grad():
            labels = y.argmax(dim=1) if y.is_floating_point() else y
            accuracy = (logits.argmax(dim=2) == labels).float().mean(dim=1)
        if all(loss is None for loss in losses):
            self._rules.record(self.global_step, accuracy, accuracy.new_zeros(()))
            return None  # every member is frozen: Lightning skips the step
        # One stack for every member (frozen ones as 0): one finiteness check and one sum per step,
        # not K; the sum's gradient reaches each member's graph as its own loss's would.
        zero = next(loss for loss in losses if loss is not None).new_zeros(())
        values = torch.stack([zero if loss is None else loss for loss in losses])
        self._rules.record(self.global_step, accuracy, values)
        return values.sum()

    def _member_losses(self, logits: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor | None]:
        """Each active member's loss on its logits (``None`` for a frozen member). Targets and
        softmax are computed once for all members, as a lone training computes them (full
        precision, autocast off); a loss that is not a mean-reduced :class:`Loss` is called as is."""
        progress = self.global_step / max(1, self.trainer.max_steps - 1)
        out: list[torch.Tensor | None] = []
        with torch.autocast(device_type=logits.device.type, enabled=False):
            full = full_precision(logits)
            y = targets_as_probabilities(target, full.shape[2], full.dtype)
            yhat = torch.softmax(full, dim=2)
            for k, (member, loss_fn) in enumerate(zip(self.members, self.losses, strict=True)):
                if member.frozen:
                    out.append(None)
                    continue
                try:
                    if isinstance(loss_fn, Loss):
                        loss_fn.progress = progress
                    if isinstance(loss_fn, Loss) and loss_fn.reduction == "mean":
                        loss = loss_fn.from_outputs(y, yhat[k], full[k]).mean()
                    else:
                        loss = loss_fn(logits[k], target)
                except Exception as err:  # this member's loss is broken; the others go on
                    self._freeze(k, StopReason.ERROR, f"{type(err).__name__}: {err}")
                    out.append(None)
                    continue
                out.append(loss)
        return out

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        self._restore_frozen()
        step = self.global_step
        active = [k for k, m in enumerate(self.members) if not m.frozen]
        stopped: list[int] = []
        for stop in self._rules.check(step, self.trainer.max_steps, active):
            self._freeze(stop.member, stop.reason, stop.detail)
            stopped.append(stop.member)
        # A lone training validates every val_every steps, at its last step, and when it stops.
        if step % self.settings.val_every == 0 or step == self.trainer.max_steps:
            self._validate(active)
        elif stopped:
            self._validate(stopped)
        if all(m.frozen for m in self.members):
            self.trainer.should_stop = True

    def on_train_end(self) -> None:
        accs = self._rules.train_acc(self.global_step) if self.global_step else None
        for k, member in enumerate(self.members):
            if not member.frozen:
                member.steps = self.global_step
                member.train_acc = None if accs is None else accs[k]

    def _freeze(self, k: int, reason: StopReason, detail: str) -> None:
        member = self.members[k]
        member.frozen, member.stop_reason, member.stop_detail = True, reason, detail
        member.steps = self.global_step
        if self.global_step:
            member.train_acc = self._rules.train_acc(self.global_step)[k]
        self._snapshots[k] = self.member_state(k)

    def _restore_frozen(self) -> None:
        """Frozen members keep the parameters and statistics they stopped with (the optimiser's
        momentum and the batch statistics of later steps would otherwise move them)."""
        if not self._snapshots:
            return
        with torch.no_grad():
            tensors = self.stack.member_tensors()
            for k, saved in self._snapshots.items():
                for name, tensor in tensors.items():
                    if tensor.stride(0):  # not a counter shared by all members
                        tensor[k].copy_(saved[name])

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def accuracy(self, members: list[int], batches: OrderedBatches) -> list[float]:
        """Accuracy of ``members`` on ``batches`` (uint8 images, resized and normalised as in training)."""
        hits = self.hits(members, batches)
        return [int(h.sum()) / max(1, len(h)) for h in hits]  # as a lone training divides

    def hits(self, members: list[int], batches: OrderedBatches) -> list[torch.Tensor]:
        """Which images of ``batches`` each of ``members`` classifies right, in order."""
        was_training = self.stack.training
        self.stack.eval()
        found: list[torch.Tensor] = []
        with self.trainer.precision_plugin.val_step_context():
            for x, y in batches:
                x = x.float().div_(255) if not x.is_floating_point() else x
                x = self.augment.resize(x, self.global_step)
                logits = self.stack(self._normalise(x))[members]
                found.append(logits.argmax(dim=2) == y)
        self.stack.train(was_training)
        if not found:
            return [torch.zeros(0, dtype=torch.bool) for _ in members]
        return list(torch.cat(found, dim=1).cpu())

    def _validate(self, members: list[int]) -> None:
        if not members:
            return
        for k, acc in zip(members, self.accuracy(members, self._val), strict=True):
            member = self.members[k]
            member.history.append((self.global_step, acc))
            if member.stop_reason != StopReason.NONFINITE:
                member.best_val_acc = acc if member.best_val_acc is None else max(member.best_val_acc, acc)

    def test(self, batches: OrderedBatches) -> None:
        """Test accuracy of every member that did not turn non-finite."""
        members = [
            k
            for k, m in enumerate(self.members)
            if m.stop_reason not in (StopReason.NONFINITE, StopReason.ERROR)
        ]
        if members:
            for k, hits in zip(members, self.hits(members, batches), strict=True):
                self.members[k].test_acc = int(hits.sum()) / max(1, len(hits))
                self.members[k].test_hits = pack_hits(hits.numpy())

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        # Elementwise optimisers on stacked parameters: each member's step is its lone step.
        return optimisation(self.stack.parameters(), self._optimizer, self._schedule, self.trainer.max_steps)

    def results(self, seconds: float) -> list[Fitness]:
        """One Fitness per member, as a lone training reports it (``seconds``: its share of the pass)."""
        return [
            training_result(
                m.stop_reason,
                m.stop_detail,
                m.best_val_acc,
                steps=m.steps,
                seconds=seconds,
                train_acc=m.train_acc,
                history=m.history,
                test_acc=m.test_acc,
                test_hits=m.test_hits,
            )
            for m in self.members
        ]


def stacking_problem(
    make_model: Callable[[], nn.Module], sample: torch.Tensor, optimizer: Any, precision: str
) -> str | None:
    """Why this recipe cannot train as a population (``None``: it can): a model ``vmap`` cannot
    run, an optimiser that is not elementwise, or fp16 loss scaling (one member's overflow would
    skip every member's step)."""
    name = getattr(getattr(optimizer, "func", optimizer), "__name__", type(optimizer).__name__)
    if name not in ELEMENTWISE_OPTIMIZERS:
        return f"the optimiser {name} is not known to update elementwise"
    if str(precision).startswith("16"):
        return "fp16 loss scaling is shared by all members (use bf16-mixed or 32-true)"
    try:
        stack_kind([make_model(), make_model()], sample)
    except TypeError as err:
        return str(err)
    return None


class StepClock(pl.Callback):
    """Seconds per training step from step ``skip`` (past kernel selection and allocator warm-up)
    to the last step's start: what ``surrogate.population=auto`` compares, without the pass's
    set-up and final validation."""

    def __init__(self, skip: int = 5) -> None:
        self.skip = skip
        self._start: tuple[int, float] | None = None
        self.seconds_per_step: float | None = None

    def on_train_batch_start(
        self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        step = trainer.global_step
        if step != self.skip and step != trainer.max_steps - 1:
            return
        if module.device.type == "cuda":
            torch.cuda.synchronize(module.device)
        now = time.perf_counter()
        if self._start is None:
            self._start = (step, now)
        elif step > self._start[0]:
            self.seconds_per_step = (now - self._start[1]) / (step - self._start[0])


def measure_population(
    train_steps: Callable[[int], float], sizes: Sequence[int] = (1, 2, 4, 8, 16, 32)
) -> int:
    """The population size with the most member-steps per second: ``train_steps(k)`` trains k
    members for a few steps and returns its seconds. Stops growing once a doubling gains < 10%."""
    best_k, best_rate = 1, 0.0
    for k in sizes:
        try:
            seconds = train_steps(k)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            break
        rate = k / max(seconds, 1e-9)
        log.info("population %d: %.1f member-steps/s", k, rate)
        if rate < best_rate * 1.1:
            break
        best_k, best_rate = k, rate
    return best_k
