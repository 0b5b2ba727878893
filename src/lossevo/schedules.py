"""Learning-rate schedules as multipliers of the base rate per optimiser step."""

from __future__ import annotations

import math
from collections.abc import Callable


def warmup_cosine(total_steps: int, warmup_steps: int = 0) -> Callable[[int], float]:
    """Linear warm-up from 0 to 1 over ``warmup_steps``, then cosine decay to 0 at
    ``total_steps`` ("one cycle" in the papers)."""
    warmup_steps = max(0, min(warmup_steps, total_steps))

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        decay = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / decay)
        return 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def constant(total_steps: int) -> Callable[[int], float]:
    """No schedule."""
    return lambda step: 1.0
