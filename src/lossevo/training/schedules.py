"""Learning-rate schedules as multipliers of the base rate per optimiser step.

Each takes the run's total steps first (the training loop passes it) and its own shape
parameters by name, so a config writes e.g. ``{_target_: lossevo.training.schedules.warmup_cosine,
_partial_: true, warmup_steps: 1000}``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[int], float]


def _warmup(step: int, warmup_steps: int) -> float | None:
    return (step + 1) / warmup_steps if step < warmup_steps else None


def warmup_cosine(total_steps: int, warmup_steps: int = 0) -> Schedule:
    """Linear warm-up from 0 to 1 over ``warmup_steps``, then cosine decay to 0 at
    ``total_steps`` ("one cycle" in the papers)."""
    return warmup_hold_cosine(total_steps, warmup_steps, hold_steps=0)


def warmup_hold_cosine(total_steps: int, warmup_steps: int = 0, hold_steps: int = 0) -> Schedule:
    """Linear warm-up, ``hold_steps`` at the peak, then cosine decay to 0 (MH-NLE's final
    EfficientNetV2 training holds for 12,400 steps; its fine-tuning for three epochs)."""
    warmup_steps = max(0, min(warmup_steps, total_steps))
    decay_start = warmup_steps + max(0, hold_steps)

    def factor(step: int) -> float:
        rising = _warmup(step, warmup_steps)
        if rising is not None:
            return rising
        if step < decay_start:
            return 1.0
        progress = min(1.0, (step - decay_start) / max(1, total_steps - decay_start))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def warmup_linear(total_steps: int, warmup_steps: int = 0) -> Schedule:
    """Linear warm-up to the peak, then linear decay to 0 at ``total_steps`` (DavidNet)."""
    warmup_steps = max(0, min(warmup_steps, total_steps))

    def factor(step: int) -> float:
        rising = _warmup(step, warmup_steps)
        if rising is not None:
            return rising
        return max(0.0, 1 - (step - warmup_steps) / max(1, total_steps - warmup_steps))

    return factor


def constant(total_steps: int) -> Schedule:
    """No schedule."""
    return lambda step: 1.0
