"""The Loss contract: a drop-in replacement for ``torch.nn.CrossEntropyLoss``.

Every loss takes logits ``[B, C]`` (or ``[B, C, d1, ...]``, like CrossEntropyLoss) and targets as
class indices ``[B]`` or class probabilities ``[B, C]`` (soft targets from mixup/cutmix), computes
``yhat = softmax(logits)`` and returns the batch mean (``reduction='mean'``), sum or per-sample
values. Subclasses implement :meth:`Loss.per_sample`, which receives the targets, the softmax
outputs and the logits, and keeps its authors' reduction over classes; a loss that depends on
the training progress reads ``self.progress`` (0 at the first step, 1 at the last), which the
training loop sets before each step.

Like ``torch.nn.CrossEntropyLoss``, every loss takes ``label_smoothing`` (targets mixed with the
uniform distribution before the loss sees them, as the authors' ``Loss(label_smoothing=...)`` does
for any graph) and computes in the precision it is given: half precision (fp16/bf16, e.g. under
autocast) is upcast to float32, float64 stays float64.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from lossevo.errors import LossevoError
from lossevo.genome.base import Genome

_REDUCTIONS = ("mean", "sum", "none")


def targets_as_probabilities(
    target: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Class indices ``[B]`` become one-hot rows; probability rows ``[B, C]`` pass through."""
    if target.is_floating_point():
        return target.to(dtype)
    return F.one_hot(target.long(), num_classes).to(dtype)


class Loss(nn.Module):
    """Base class of every loss in lossevo (see the module docstring)."""

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        self.label_smoothing = label_smoothing
        self.progress = 0.0

    @property
    def label_smoothing(self) -> float:
        return self._label_smoothing

    @label_smoothing.setter
    def label_smoothing(self, value: float) -> None:
        if not 0.0 <= float(value) <= 1.0:
            raise LossevoError(f"label_smoothing must be in [0, 1], got {value}")
        self._label_smoothing = float(value)

    def smoothing_note(self) -> str:
        """``, label smoothing 0.1`` when it applies (for equations), else nothing."""
        return f", label smoothing {self.label_smoothing}" if self.label_smoothing else ""

    @abstractmethod
    def per_sample(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Loss of each sample ``[B]`` from targets ``y``, softmax ``yhat`` and ``logits`` (all [B, C])."""

    def from_outputs(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Per-sample values ``[B]`` from one-hot or soft targets ``y``, softmax ``yhat`` and
        ``logits`` (``[B, C]``, full precision): :meth:`per_sample` after label smoothing. Lets a
        population compute the targets and softmax once for all its members."""
        if self.label_smoothing:
            y = y * (1 - self.label_smoothing) + self.label_smoothing / y.shape[1]
        return self.per_sample(y, yhat, logits)

    @property
    def equation(self) -> str:
        """A readable formula of the per-sample loss."""
        return type(self).__name__

    def source(self, name: str = "per_sample") -> str:
        """Python source, needing only ``torch``, of a function ``name(y, yhat, logits)`` computing
        :meth:`per_sample` with this loss's options inlined (what ``lossevo export`` writes out)."""
        raise LossevoError(
            f"{type(self).__name__} has no standalone source: lossevo export writes genome losses and the "
            "losses of `lossevo list`"
        )

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits, target = _flatten(input, target)
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits = full_precision(logits)
            y = targets_as_probabilities(target, logits.shape[1], logits.dtype)
            values = self.from_outputs(y, torch.softmax(logits, dim=1), logits)
        if self.reduction == "mean":
            return values.mean()
        if self.reduction == "sum":
            return values.sum()
        return values.reshape(_batch_shape(input))

    def extra_repr(self) -> str:
        smoothing = f", label_smoothing={self.label_smoothing}" if self.label_smoothing else ""
        return f"reduction={self.reduction!r}{smoothing}"


def full_precision(logits: torch.Tensor) -> torch.Tensor:
    """Half precision (and integer) logits as float32; float32 and float64 as they are."""
    if logits.dtype in (torch.float16, torch.bfloat16) or not logits.is_floating_point():
        return logits.float()
    return logits


def _batch_shape(input: torch.Tensor) -> tuple[int, ...]:
    return (input.shape[0], *input.shape[2:])


def _flatten(input: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check shapes like CrossEntropyLoss does, and move extra dims into the batch."""
    if input.dim() < 2:
        raise ValueError(f"loss input must be logits [B, C, ...], got shape {tuple(input.shape)}")
    soft = target.is_floating_point()
    expected = tuple(input.shape) if soft else _batch_shape(input)
    if tuple(target.shape) != expected:
        kind = "probabilities" if soft else "class indices"
        raise ValueError(
            f"target as {kind} must have shape {expected} for input {tuple(input.shape)}, "
            f"got {tuple(target.shape)}"
        )
    if input.dim() == 2:
        return input, target
    classes = input.shape[1]
    flat_input = input.movedim(1, -1).reshape(-1, classes)
    flat_target = target.movedim(1, -1).reshape(-1, classes) if soft else target.reshape(-1)
    return flat_input, flat_target


class GenomeLoss(Loss):
    """A loss compiled from a genome: ``sign * f(y, yhat)`` per sample, batch mean by default."""

    def __init__(
        self, genome: Genome, reduction: str = "mean", name: str | None = None, label_smoothing: float = 0.0
    ) -> None:
        super().__init__(reduction, label_smoothing)
        genome.validate()
        self.genome = genome
        self.name = name or f"{genome.space}:{genome.key()}"
        self._fn = genome.compile(signed=True)

    def per_sample(self, y: torch.Tensor, yhat: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        return self._fn(y, yhat, logits)

    def source(self, name: str = "per_sample") -> str:
        # The ops' own text and the genome's source: what _fn was compiled from.
        parts = [op.definition() for op in self.genome.ops()]
        return "\n\n".join([*parts, self.genome.source(signed=True, name=name)])

    @property
    def equation(self) -> str:
        return self.genome.equation() + self.smoothing_note()

    def extra_repr(self) -> str:
        return f"{self.name}: {self.equation}, {super().extra_repr()}"
