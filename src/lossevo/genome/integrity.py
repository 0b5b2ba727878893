"""Integrity check of a candidate loss before any training (docs/methods.md §2, MH-NLE Sec. 3.3).

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

import itertools
from collections import OrderedDict
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


_VERSIONS = itertools.count()


@dataclass
class _Verdict:
    """What the integrity check knows about one function, whatever the population."""

    reason: str | None  # failed a value/shape test
    sign: int = 1
    phenotype: torch.Tensor | None = None
    optimum: float | None = None
    deep_checked: bool = False  # gradients and the domain grid (run once, only when needed)
    deep_problem: str | None = None
    nearest: tuple[int | None, float] = (None, float("inf"))
    nearest_stamp: int | None = None  # the archive version of ``nearest``


class NoveltyArchive:
    """Normalised phenotypes of the current population, for the novelty test."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._rows: list[torch.Tensor] = []
        self._matrix: torch.Tensor | None = None
        # Unique across all archives, renewed by every add/remove: a checker may reuse a nearest()
        # answer while the version is unchanged.
        self.version = next(_VERSIONS)

    def __len__(self) -> int:
        return len(self._ids)

    def add(self, member_id: int, phenotype: torch.Tensor) -> None:
        self._ids.append(member_id)
        self._rows.append(phenotype)
        self._matrix = None
        self.version = next(_VERSIONS)

    def remove(self, member_id: int) -> None:
        i = self._ids.index(member_id)
        del self._ids[i], self._rows[i]
        self._matrix = None
        self.version = next(_VERSIONS)

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
        cache_size: int = 10_000,
    ) -> None:
        self.points = points
        self.novelty_threshold = novelty_threshold
        self.optimum_guard = optimum_guard
        self.max_flat_run = max(2, int(max_flat_fraction * points))
        self.flat_tolerance = flat_tolerance
        self.check_gradient = check_gradient
        self.reject_wrong_side = reject_wrong_side
        # Verdicts by canonical form: most mutations of a graph genome touch unused nodes, so the
        # same function comes back again and again (LRU, ~4 KB per entry).
        self.cache_size = cache_size
        self._verdicts: OrderedDict[str, _Verdict] = OrderedDict()
        self._p, self._y, self._yhat = binary_rows(points)
        self._logits = torch.log(self._yhat)
        self._grid_y, self._grid_yhat = domain_grid()
        grid_logits = torch.log(self._grid_yhat.clamp_min(1e-38))
        # Losses that read the logit directly also meet it far from log(yhat): shift it both ways.
        self._grid_logits = [grid_logits, grid_logits + 20.0, grid_logits - 20.0]

    def check(self, genome: Genome, archive: NoveltyArchive | None = None) -> IntegrityResult:
        """Run every test; the first failure gives the reason. The cheap tests run first (values,
        shape, novelty), the costly ones (gradients, the domain grid) only for a genome that
        passed them: in a converged population most mutants are rejected as not novel."""
        problem = genome.structure_problem()
        if problem is not None:
            return IntegrityResult(False, f"structure: {problem}")
        verdict = self._verdict(genome)
        if verdict.reason is not None:
            return IntegrityResult(False, verdict.reason)
        assert verdict.phenotype is not None
        if archive is not None and self.novelty_threshold > 0:
            stamp = archive.version
            if verdict.nearest_stamp != stamp:  # repeats of one function against one population
                verdict.nearest = archive.nearest(verdict.phenotype)
                verdict.nearest_stamp = stamp
            member, distance = verdict.nearest
            if distance < self.novelty_threshold:
                return IntegrityResult(
                    False,
                    f"novelty: phenotype within {distance:.4f} of candidate {member} "
                    f"(threshold {self.novelty_threshold})",
                    verdict.sign,
                    verdict.phenotype,
                    verdict.optimum,
                )
        if not verdict.deep_checked:
            verdict.deep_problem = self._gradient(genome) or self._domain(genome)
            verdict.deep_checked = True
        if verdict.deep_problem is not None:
            return IntegrityResult(False, verdict.deep_problem)
        return IntegrityResult(True, None, verdict.sign, verdict.phenotype, verdict.optimum)

    def _verdict(self, genome: Genome) -> _Verdict:
        """The archive-independent tests of a genome, cached by its canonical form."""
        key = f"{genome.space}|{type(genome).__name__}|{genome.reduction()}|{genome.canonical()}"
        verdict = self._verdicts.get(key)
        if verdict is not None:
            self._verdicts.move_to_end(key)
            return verdict
        verdict = self._shallow(genome)
        if self.cache_size > 0:
            self._verdicts[key] = verdict
            if len(self._verdicts) > self.cache_size:
                self._verdicts.popitem(last=False)
        return verdict

    def _shallow(self, genome: Genome) -> _Verdict:
        try:
            curve = self._curve(genome)
        except (RuntimeError, ValueError, TypeError, OverflowError, ZeroDivisionError) as err:
            return _Verdict(f"evaluation error: {type(err).__name__}: {err}")
        if isinstance(curve, str):
            return _Verdict(curve)
        shape = self._shape(curve)
        if isinstance(shape, str):
            return _Verdict(shape)
        sign, optimum = shape
        return _Verdict(None, sign, normalise(curve * sign), optimum)

    def _curve(self, genome: Genome) -> torch.Tensor | str:
        with torch.no_grad():
            curve = genome.compile()(self._y, self._yhat, self._logits)
        if not torch.isfinite(curve).all():
            return "non-finite: loss values on the binary phenotype"
        return curve

    def _gradient(self, genome: Genome) -> str | None:
        if not self.check_gradient:
            return None
        try:
            yhat = self._yhat.clone().requires_grad_(True)
            curve = genome.compile()(self._y, yhat, self._logits)
            if curve.requires_grad:
                (grad,) = torch.autograd.grad(curve.sum(), yhat)
                if not torch.isfinite(grad).all():
                    return "non-finite: gradient on the binary phenotype"
        except (RuntimeError, ValueError, TypeError, OverflowError, ZeroDivisionError) as err:
            return f"evaluation error: {type(err).__name__}: {err}"
        return None

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
        # One interior extremum: the point between the last step of the first monotone piece and
        # the first step of the second, or the middle of the flat run between them (a symmetric
        # top is flat at float32 resolution over many points; its first non-flat step after the
        # turn is not where the optimum is).
        nonzero_index = torch.nonzero(steps).flatten()
        last_up = int(nonzero_index[int(changes[0])])
        first_down = int(nonzero_index[int(changes[0]) + 1])
        optimum = float((self._p[last_up + 1] + self._p[first_down]) / 2)
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
