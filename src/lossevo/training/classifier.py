"""The LightningModule that trains any classifier with any Loss.

Kept lean for the surrogate's hot path: no per-step ``self.log``, metrics accumulate in device
tensors and are read back only at rule checks and validation (one sync each), augmentation runs
batched on the device.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from lossevo.config.settings import SurrogateSettings
from lossevo.data.augment import AugmentRNG, Pipeline, set_dropout
from lossevo.losses.base import Loss
from lossevo.results import StopReason, pack_hits
from lossevo.training.rules import StopRules


class ClassifierModule(pl.LightningModule):
    """Trains ``model`` with ``loss``; records validation accuracy and why training stopped.

    After ``fit``: ``best_val_acc``, ``history`` (step, val acc), ``stop_reason`` (completed,
    early_stop, precheck or nonfinite), ``stop_detail`` and ``train_acc``.
    """

    mean: torch.Tensor  # per-channel normalisation, registered as buffers (they follow the device)
    std: torch.Tensor

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        settings: SurrogateSettings,
        optimizer: Callable[..., torch.optim.Optimizer],
        schedule: Callable[[int], Callable[[int], float]] | None,
        augment: Pipeline,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        seed: int,
        channels_last: bool = False,
        data_seed: int | None = None,
    ) -> None:
        super().__init__()
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.model = model.to(memory_format=self.memory_format)
        self.loss = loss
        self.settings = settings
        self._optimizer = optimizer
        self._schedule = schedule
        self.augment = augment
        self.seed = seed
        self.data_seed = seed if data_seed is None else data_seed
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)
        self.best_val_acc: float | None = None
        self.test_acc: float | None = None
        self.test_hits: str | None = None  # which test images it got right (results.pack_hits)
        self.history: list[tuple[int, float]] = []
        self.stop_reason = StopReason.COMPLETED
        self.stop_detail = ""
        self.train_acc: float | None = None
        self._rejected = False

    # ------------------------------------------------------------------ helpers
    def _inputs(self, x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255)

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return ((x - self.mean) / self.std).contiguous(memory_format=self.memory_format)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of uint8 (or [0, 1] float) images, resized and normalised as in training."""
        if not x.is_floating_point():
            x = self._inputs(x)
        x = self.augment.resize(x, self.global_step)
        return self.model(self._normalise(x))

    # ------------------------------------------------------------------ training
    def on_fit_start(self) -> None:
        self._rng = AugmentRNG(self.data_seed + 7, self.device)  # mixing; per-image augmentation has its own
        self._dropout: float | None = None
        self._rules = StopRules(self.settings, 1, self.trainer.max_steps, self.device)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch  # float images in [0, 1], augmented image by image (AugmentedBatches)
        step = self.global_step
        dropout = self.augment.dropout_at(step)
        if dropout is not None and dropout != self._dropout:  # progressive RandAug phases
            set_dropout(self.model, dropout)
            self._dropout = dropout
        x, y = self.augment.mix(x, y, self._rng)
        if isinstance(self.loss, Loss):
            self.loss.progress = self.global_step / max(1, self.trainer.max_steps - 1)
        logits = self.model(self._normalise(x))
        loss = self.loss(logits, y)
        with torch.no_grad():
            labels = y.argmax(dim=1) if y.is_floating_point() else y
            self._rules.record(self.global_step, (logits.argmax(dim=1) == labels).float().mean(), loss)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # global_step: optimiser steps taken so far
        for stop in self._rules.check(self.global_step, self.trainer.max_steps, active=[0]):
            self.stop_reason, self.stop_detail = stop.reason, stop.detail
            self.trainer.should_stop = True

    def on_train_end(self) -> None:
        step = self.global_step
        if step:
            self.train_acc = self._rules.train_acc(step)[0]

    # ------------------------------------------------------------------ evaluation
    def on_validation_epoch_start(self) -> None:
        self._correct = torch.zeros((), device=self.device)
        self._seen = 0

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self._correct += (self(x).argmax(dim=1) == y).sum()
        self._seen += len(y)

    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking or not self._seen:
            return
        acc = float(self._correct) / self._seen
        self.history.append((self.global_step, acc))
        if self.stop_reason != StopReason.NONFINITE:
            self.best_val_acc = acc if self.best_val_acc is None else max(self.best_val_acc, acc)

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()
        self._hits: list[torch.Tensor] = []

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        hits = self(x).argmax(dim=1) == y
        self._hits.append(hits)
        self._correct += hits.sum()
        self._seen += len(y)

    def on_test_epoch_end(self) -> None:
        self.test_acc = float(self._correct) / max(1, self._seen)
        self.test_hits = pack_hits(torch.cat(self._hits).cpu().numpy()) if self._hits else None

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        return optimisation(self.model.parameters(), self._optimizer, self._schedule, self.trainer.max_steps)


def optimisation(
    parameters: Any,
    optimizer: Callable[..., torch.optim.Optimizer],
    schedule: Callable[[int], Callable[[int], float]] | None,
    steps: int,
) -> Any:
    """Lightning's ``configure_optimizers`` answer: the optimiser, stepped by the schedule every step."""
    built = optimizer(parameters)
    if schedule is None:
        return built
    scheduler = torch.optim.lr_scheduler.LambdaLR(built, schedule(steps))
    return {"optimizer": built, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
