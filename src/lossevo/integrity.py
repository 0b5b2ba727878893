"""Integrity check of a candidate loss before any training (REFERENCE §2, seed 001 Sec. 3.3).

The *binary phenotype* is the loss of a two-class sample as the probability ``p`` of the true
class moves from wrong (``p = 1e-7``) to right (``p = 1 - 1e-7``): rows ``yhat = [1-p, p]``,
``y = [0, 1]`` (the authors' 1,000 rows, in ascending ``p``), summed over both classes.

A candidate is rejected when its structure is invalid (cycle, ``y`` or ``yhat`` unused), its
phenotype or the phenotype's gradient is non-finite, its value or gradient is non-finite anywhere
on a grid of (y, yhat) pairs covering what training feeds each class (soft targets, exact zeros
and ones, values next to them), the curve is flat or has more than one
optimum, its single interior optimum lies within 1% of ``p = 0.5``, or its normalised phenotype
is within L2 distance 0.01 of a member of the population (novelty). Otherwise its sign is
decided on the *unflipped* curve: flip (sign -1) when the curve increases towards the right
answer or is an upside-down parabola. Deciding on the unflipped curve fixes the authors' defect
where a child inherited its parent's flip and was judged on the flipped curve.

One rule is lossevo's, not the paper's (``reject_wrong_side``, on by default): after the sign is
decided, a loss whose minimum lies at ``p < 0.5`` is rejected, since it trains every sample
towards a wrong answer (such losses reach 0% accuracy; the paper relies on the training-accuracy
pre-check to catch them). ``reject_wrong_side=False`` gives the paper's rule set exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lossevo.genome.base import Genome

PHENOTYPE_LOW = 1e-7


def binary_rows(
    points: int = 1000, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(p, y, yhat)`` of the binary phenotype: ``p`` ascending from wrong to right."""
    p = torch.linspace(PHENOTYPE_LOW, 1 - PHENOTYPE_LOW, points, dtype=torch.float64).to(dtype)
    yhat = torch.stack([1 - p, p], dim=1)
    y = torch.tensor([0.0, 1.0], dtype=dtype).expand(points, 2)
    return p, y, yhat


def raw_phenotype(genome: Genome, points: int = 1000) -> torch.Tensor:
    """The unflipped binary phenotype of a genome (no sign applied)."""
    _, y, yhat = binary_rows(points)
    with torch.no_grad():
        return genome.compile()(y, yhat, torch.log(yhat))


def domain_grid() -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair of target and prediction values a class can take in training, ``[N, 1]`` each:
    0, 1 and values within 1e-7 and 1e-4 of them (exact zeros come from float32 softmax
    underflow, near-ones from mixup), and a 0.01 grid in between; float32."""
    ends = torch.tensor([0.0, 1e-30, 1e-7, 1e-4, 1 - 1e-4, 1 - 1e-7, 1.0], dtype=torch.float64)
    values = torch.cat([ends, torch.linspace(0.01, 0.99, 99, dtype=torch.float64)]).sort().values.float()
    y, yhat = torch.meshgrid(values, values, indexing="ij")
    return y.reshape(-1, 1), yhat.reshape(-1, 1)


def normalise(curve: torch.Tensor) -> torch.Tensor:
    """Min-max normalisation to [0, 1] (a constant curve maps to zeros)."""
    low, high = curve.min(), curve.max()
    span = high - low
    return (curve - low) / span if span > 0 else torch.zeros_like(curve)


@dataclass
class IntegrityResult:
    ok: bool
    reason: str | None = None
    sign: int = 1
    phenotype: torch.Tensor | None = None  # normalised, sign applied
    optimum: float | None = None  # p of the interior optimum, if any

    def __bool__(self) -> bool:
        return self.ok


class NoveltyArchive:
    """Normalised phenotypes of the current population, for the novelty test."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._rows: list[torch.Tensor] = []
        self._matrix: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, member_id: int, phenotype: torch.Tensor) -> None:
        self._ids.append(member_id)
        self._rows.append(phenotype)
        self._matrix = None

    def remove(self, member_id: int) -> None:
        i = self._ids.index(member_id)
        del self._ids[i], self._rows[i]
        self._matrix = None

    def nearest(self, phenotype: torch.Tensor) -> tuple[int | None, float]:
        """The closest member and its L2 distance (``(None, inf)`` when empty)."""
        if not self._ids:
            return None, float("inf")
        if self._matrix is None:
            self._matrix = torch.stack(self._rows)
        distances = torch.linalg.vector_norm(self._matrix - phenotype, dim=1)
        i = int(torch.argmin(distances))
        return self._ids[i], float(distances[i])


class IntegrityChecker:
    """Configurable integrity check; defaults follow the paper and the authors' code."""

    def __init__(
        self,
        points: int = 1000,
        novelty_threshold: float = 0.01,
        optimum_guard: float = 0.01,
        max_flat_fraction: float = 0.05,
        flat_tolerance: float = 5e-7,
        check_gradient: bool = True,
        reject_wrong_side: bool = True,
    ) -> None:
        self.points = points
        self.novelty_threshold = novelty_threshold
        self.optimum_guard = optimum_guard
        self.max_flat_run = max(2, int(max_flat_fraction * points))
        self.flat_tolerance = flat_tolerance
        self.check_gradient = check_gradient
        self.reject_wrong_side = reject_wrong_side
        self._p, self._y, self._yhat = binary_rows(points)
        self._logits = torch.log(self._yhat)
        self._grid_y, self._grid_yhat = domain_grid()
        grid_logits = torch.log(self._grid_yhat.clamp_min(1e-38))
        # Losses that read the logit directly also meet it far from log(yhat): shift it both ways.
        self._grid_logits = [grid_logits, grid_logits + 20.0, grid_logits - 20.0]

    def check(self, genome: Genome, archive: NoveltyArchive | None = None) -> IntegrityResult:
        """Run every test in order; the first failure gives the reason."""
        problem = genome.structure_problem()
        if problem is not None:
            return IntegrityResult(False, f"structure: {problem}")
        try:
            curve = self._curve(genome)
        except (RuntimeError, ValueError, TypeError, OverflowError, ZeroDivisionError) as err:
            return IntegrityResult(False, f"evaluation error: {type(err).__name__}: {err}")
        if isinstance(curve, str):
            return IntegrityResult(False, curve)
        shape = self._shape(curve)
        if isinstance(shape, str):
            return IntegrityResult(False, shape)
        sign, optimum = shape
        problem = self._domain(genome)
        if problem is not None:
            return IntegrityResult(False, problem)
        phenotype = normalise(curve * sign)
        if archive is not None and self.novelty_threshold > 0:
            member, distance = archive.nearest(phenotype)
            if distance < self.novelty_threshold:
                return IntegrityResult(
                    False,
                    f"novelty: phenotype within {distance:.4f} of candidate {member} "
                    f"(threshold {self.novelty_threshold})",
                    sign,
                    phenotype,
                    optimum,
                )
        return IntegrityResult(True, None, sign, phenotype, optimum)

    def _curve(self, genome: Genome) -> torch.Tensor | str:
        fn = genome.compile()
        if not self.check_gradient:
            with torch.no_grad():
                curve = fn(self._y, self._yhat, self._logits)
            if not torch.isfinite(curve).all():
                return "non-finite: loss values on the binary phenotype"
            return curve
        yhat = self._yhat.clone().requires_grad_(True)
        curve = fn(self._y, yhat, self._logits)
        if not torch.isfinite(curve).all():
            return "non-finite: loss values on the binary phenotype"
        if curve.requires_grad:
            (grad,) = torch.autograd.grad(curve.sum(), yhat)
            if not torch.isfinite(grad).all():
                return "non-finite: gradient on the binary phenotype"
        return curve.detach()

    def _domain(self, genome: Genome) -> str | None:
        """Non-finite values or gradients anywhere on the (y, yhat) domain grid."""
        fn = genome.compile()
        shifts = self._grid_logits if genome.uses_logits else self._grid_logits[:1]
        try:
            for logits in shifts:
                yhat = self._grid_yhat.clone().requires_grad_(self.check_gradient)
                z = logits.clone().requires_grad_(self.check_gradient and genome.uses_logits)
                values = fn(self._grid_y, yhat, z)
                bad = ~torch.isfinite(values)
                what = "loss values"
                if not bad.any() and self.check_gradient and values.requires_grad:
                    inputs = (yhat, z) if genome.uses_logits else (yhat,)
                    grads = torch.autograd.grad(values.sum(), inputs)
                    bad = ~torch.stack([torch.isfinite(g).flatten() for g in grads]).all(dim=0)
                    what = "gradient"
                if bad.any():
                    i = int(torch.nonzero(bad)[0])
                    return (
                        f"non-finite: {what} at y={float(self._grid_y[i]):.7g}, "
                        f"yhat={float(self._grid_yhat[i]):.7g}"
                    )
        except (RuntimeError, ValueError, TypeError, OverflowError, ZeroDivisionError) as err:
            return f"evaluation error: {type(err).__name__}: {err}"
        return None

    def _shape(self, curve: torch.Tensor) -> tuple[int, float | None] | str:
        """``(sign, optimum p or None)`` or the reason the curve is rejected."""
        span = float(curve.max() - curve.min())
        if not span > 0:
            return "shape: constant phenotype (no optimum)"
        diff = curve[1:] - curve[:-1]
        # A step is flat when it is at the level of float32 rounding of the values it joins.
        scale = torch.maximum(curve[1:].abs(), curve[:-1].abs())
        steps = torch.where(diff.abs() <= self.flat_tolerance * scale, 0, torch.sign(diff)).to(torch.int8)
        flat_run = _longest_zero_run(steps)
        if flat_run >= self.max_flat_run:
            return f"shape: flat over {flat_run} of {self.points} points"
        moving = steps[steps != 0]
        changes = torch.nonzero(moving[1:] != moving[:-1]).flatten()
        if len(changes) > 1:
            return f"shape: {len(changes) + 1} monotone pieces, more than one optimum"
        if len(changes) == 0:
            # Monotone: a loss that increases towards the right answer is flipped.
            return (-1 if int(moving[0]) > 0 else 1), None
        # One interior extremum: find it on the original index axis.
        nonzero_index = torch.nonzero(steps).flatten()
        turn = int(nonzero_index[int(changes[0]) + 1])
        optimum = float(self._p[turn])
        if abs(optimum - 0.5) <= self.optimum_guard:
            return f"shape: optimum at p={optimum:.3f}, within {self.optimum_guard} of 0.5"
        is_maximum = int(moving[0]) > 0
        if self.reject_wrong_side and optimum < 0.5:
            return f"shape: minimum at p={optimum:.3f} < 0.5 trains towards the wrong class"
        return (-1 if is_maximum else 1), optimum


def _longest_zero_run(steps: torch.Tensor) -> int:
    """Length of the longest run of zeros in a 1-D tensor."""
    zero = (steps == 0).to(torch.int32)
    if not bool(zero.any()):
        return 0
    # Positions of non-zeros bracket the zero runs.
    edges = torch.nonzero(zero == 0).flatten()
    bounds = torch.cat([edges.new_tensor([-1]), edges, edges.new_tensor([len(steps)])])
    return int((bounds[1:] - bounds[:-1] - 1).max())
