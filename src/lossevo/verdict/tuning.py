"""The verdict's tuning (``validate.tune``, docs/methods.md §5): before any test run, every loss's
learning rate and each baseline's own coefficient (label smoothing ε, Poly-1 ε) are chosen on the
validation images, with seeds of their own, so a found loss cannot win by acting as a better step
size or smoothing strength than the baselines were given.

A loss's grid is the product of ``lr`` (multipliers of each setting's learning rate) and, for a
baseline, the values of every coefficient in ``coefficients`` that its loss holds with a nonzero
value; each loss's own setting is always a point, and it wins ties, so tuning never picks a point
that did worse on validation than the untuned one. The point with the best mean validation
accuracy at the last step over ``runs`` trainings is the one the test runs use.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lossevo.results import Status
from lossevo.store.journal import TuningRow

LR_KEY = "surrogate.optimizer.lr"  # the setting's learning rate, which lr multiplies


@dataclass
class TuneGrid:
    """What ``validate.tune`` tries, at ``budget`` steps (the headline's) in the search's setting."""

    lr: list[float]  # multipliers of each setting's learning rate
    coefficients: dict[str, list[float]] = field(default_factory=dict)  # a baseline's loss key -> values
    runs: int = 1  # trainings per point; their validation mean decides
    budget: int = 0


@dataclass(frozen=True)
class Point:
    """One point of a loss's grid: its learning rate's multiplier and its coefficients' values."""

    lr_scale: float = 1.0
    coefficients: tuple[tuple[str, float], ...] = ()

    @property
    def label(self) -> str:
        parts = [f"lr x{self.lr_scale:g}", *(f"{k} {v:g}" for k, v in self.coefficients)]
        return ", ".join(parts)

    def loss(self, loss: dict[str, Any]) -> dict[str, Any]:
        """``loss`` with this point's coefficients."""
        return {**loss, **dict(self.coefficients)}

    def overrides(self, lr: float | None) -> list[str]:
        """The overrides that give a training of the setting whose learning rate is ``lr`` this point's."""
        if self.lr_scale == 1.0 or lr is None:
            return []
        return [f"{LR_KEY}={lr * self.lr_scale!r}"]


def points(loss: dict[str, Any], baseline: bool, grid: TuneGrid) -> list[Point]:
    """The grid of one loss, its own setting first."""
    keys = [k for k in grid.coefficients if baseline and _nonzero(loss.get(k))]
    own = tuple((k, float(loss[k])) for k in keys)
    scales = _with(grid.lr, 1.0)
    values = [_with(grid.coefficients[k], float(loss[k])) for k in keys]
    out = [Point(1.0, own)]
    for scale, *chosen in itertools.product(scales, *values):
        point = Point(float(scale), tuple(zip(keys, (float(v) for v in chosen), strict=True)))
        if point not in out:
            out.append(point)
    return out


@dataclass
class TuningResult:
    """One point of one loss's grid as its tuning trainings found it."""

    loss: str
    point: str  # its label
    val_mean: float  # NaN: no run finished
    finished: int
    failed: int
    seconds: float
    chosen: bool = False


def choose(
    rows: list[TuningRow], grids: dict[str, list[Point]]
) -> tuple[dict[str, Point], list[TuningResult]]:
    """Each loss's point with the best validation mean over its finished runs (a point with a
    failed run is never chosen; ties and a loss with nothing finished keep its own setting), and
    every point's result."""
    chosen: dict[str, Point] = {}
    results: list[TuningResult] = []
    for loss, grid in grids.items():
        mine = [r for r in rows if r.loss == loss]
        best, best_mean = grid[0], -math.inf
        rows_of = []
        for point in grid:
            runs = [r for r in mine if r.point == point.label]
            values = [r.fitness for r in runs if r.status == Status.DONE and r.fitness is not None]
            failed = sum(r.status == Status.FAILED for r in runs)
            mean = float(np.mean(values)) if values else math.nan
            seconds = float(sum(r.seconds or 0.0 for r in runs))
            rows_of.append(TuningResult(loss, point.label, mean, len(values), failed, seconds))
            if values and not failed and mean > best_mean:
                best, best_mean = point, mean
        chosen[loss] = best
        for r in rows_of:
            r.chosen = r.point == best.label
        results.extend(rows_of)
    return chosen, results


def _with(values: list[float], own: float) -> list[float]:
    out = [float(v) for v in values]
    return out if any(math.isclose(v, own) for v in out) else [own, *out]


def _nonzero(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value != 0


def applied(loss: str, chosen: dict[str, Point], grids: dict[str, list[Point]]) -> Point | None:
    """The point ``loss``'s test runs train with, None where that is its own setting (untuned, or
    tuning kept it): such runs are the untuned ones and are shared with an untuned verdict."""
    point = chosen.get(loss)
    return None if point is None or point == grids[loss][0] else point
