"""Batched image augmentation on the training device (docs/methods.md §4).

One :class:`Pipeline` per ``conf/augment/*.yaml``; it takes float images in [0, 1] ``[B, C, H, W]``
with targets (class indices or probabilities) and applies, in order:

    resize (image_size / progressive phase) -> RandAugment -> pad + random crop + flip (base)
    -> cutout -> mixup or cutmix (soft targets)

Every step is a few tensor ops on the whole batch (no per-sample Python). Randomness comes from
an :class:`AugmentRNG` seeded per training run, so a candidate's augmentation is reproducible.

RandAugment is implemented here rather than taken from kornia: kornia 0.9's ``RandAugment``
picks the same ops for a whole batch (the paper picks them per image), fails on 1-channel images
when it draws its saturation op, and costs about 3 ms per 64×3×32×32 batch on 2 CPU cores, a
sixth of a ConvNet step. This one picks ops per image and groups them into one warp, one blend
and one point-wise pass per round. Ops and ranges follow Cubuk et al. (2020) on timm's 0-10
magnitude scale (magnitudes above 10 extrapolate, as EfficientNetV2's progressive schedule
uses up to 15).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from scipy.special import betaincinv

from lossevo.errors import LossevoError


class AugmentRNG:
    """Seeded randomness for augmentation: tensors on the images' device, scalars on the CPU
    (so drawing a mixup λ never waits for the GPU)."""

    def __init__(self, seed: int, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        self.tensor = torch.Generator(device=self.device).manual_seed(seed)
        self.scalar = torch.Generator().manual_seed(seed + 1)

    def uniform(self) -> float:
        return float(torch.rand((), generator=self.scalar))

    def beta(self, alpha: float) -> float:
        """A Beta(α, α) draw by inverse CDF (torch's Beta takes no generator)."""
        return float(betaincinv(alpha, alpha, self.uniform()))


# ---------------------------------------------------------------------------- base, cutout
def random_crop(x: torch.Tensor, pad: int, rng: AugmentRNG) -> torch.Tensor:
    """Zero-pad by ``pad`` and crop back to size at a random offset per image."""
    if pad <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    top = torch.randint(0, 2 * pad + 1, (b, 1), generator=rng.tensor, device=x.device)
    left = torch.randint(0, 2 * pad + 1, (b, 1), generator=rng.tensor, device=x.device)
    rows = (top + torch.arange(h, device=x.device))[:, :, None]  # [B, H, 1]
    cols = (left + torch.arange(w, device=x.device))[:, None, :]  # [B, 1, W]
    batch = torch.arange(b, device=x.device)[:, None, None]
    # Advanced indexing around the channel slice yields [B, H, W, C].
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_hflip(x: torch.Tensor, rng: AugmentRNG) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=rng.tensor, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int, rng: AugmentRNG) -> torch.Tensor:
    """Erase one ``size``×``size`` square per image, centred anywhere (clipped at the border),
    as DeVries & Taylor (2017)."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b, 1, 1), generator=rng.tensor, device=x.device)
    cx = torch.randint(0, w, (b, 1, 1), generator=rng.tensor, device=x.device)
    rows = torch.arange(h, device=x.device)[None, :, None]
    cols = torch.arange(w, device=x.device)[None, None, :]
    half = size // 2
    inside = (rows >= cy - half) & (rows < cy - half + size) & (cols >= cx - half) & (cols < cx - half + size)
    return x.masked_fill(inside[:, None], 0.0)


# ---------------------------------------------------------------------------- mixing
def _soft(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    return y.float() if y.is_floating_point() else F.one_hot(y.long(), num_classes).float()


def mixup(
    x: torch.Tensor, y: torch.Tensor, alpha: float, num_classes: int, rng: AugmentRNG
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup (Zhang et al. 2018): one λ ~ Beta(α, α) per batch, pairs by a random permutation."""
    lam = rng.beta(alpha)
    perm = torch.randperm(x.shape[0], generator=rng.tensor, device=x.device)
    soft = _soft(y, num_classes)
    return lam * x + (1 - lam) * x[perm], lam * soft + (1 - lam) * soft[perm]


def cutmix(
    x: torch.Tensor, y: torch.Tensor, alpha: float, num_classes: int, rng: AugmentRNG
) -> tuple[torch.Tensor, torch.Tensor]:
    """CutMix (Yun et al. 2019): a box of area 1-λ, λ ~ Beta(α, α), pasted from a permuted
    batch; targets mixed by the box's actual area."""
    _, _, h, w = x.shape
    lam = rng.beta(alpha)
    cut = math.sqrt(1 - lam)
    bh, bw = int(h * cut), int(w * cut)
    cy, cx = int(rng.uniform() * h), int(rng.uniform() * w)
    top, bottom = max(cy - bh // 2, 0), min(cy + bh // 2, h)
    left, right = max(cx - bw // 2, 0), min(cx + bw // 2, w)
    perm = torch.randperm(x.shape[0], generator=rng.tensor, device=x.device)
    x = x.clone()
    x[:, :, top:bottom, left:right] = x[perm, :, top:bottom, left:right]
    kept = 1 - (bottom - top) * (right - left) / (h * w)
    soft = _soft(y, num_classes)
    return x, kept * soft + (1 - kept) * soft[perm]


# ---------------------------------------------------------------------------- RandAugment
RANDAUG_OPS = (
    "identity",
    "autocontrast",
    "equalize",
    "rotate",
    "solarize",
    "color",
    "posterize",
    "contrast",
    "brightness",
    "sharpness",
    "shear_x",
    "shear_y",
    "translate_x",
    "translate_y",
)
_OP = {name: i for i, name in enumerate(RANDAUG_OPS)}


def _op_table(rows: dict[str, Sequence[float]], width: int) -> list[list[float]]:
    """One row per op (zeros unless given)."""
    return [list(rows.get(name, [0.0] * width)) for name in RANDAUG_OPS]


# Per-op coefficients of the warp, looked up per image: angle (x 30° f), shear x and y (x 0.3 f),
# translate x and y (x 0.45 f of the image).
_WARP_TABLE = _op_table(
    {
        "rotate": [1, 0, 0, 0, 0],
        "shear_x": [0, 1, 0, 0, 0],
        "shear_y": [0, 0, 1, 0, 0],
        "translate_x": [0, 0, 0, 1, 0],
        "translate_y": [0, 0, 0, 0, 1],
    },
    5,
)
_GEOMETRIC = ("rotate", "shear_x", "shear_y", "translate_x", "translate_y")
_cache: dict[tuple, torch.Tensor] = {}


def _table(name: str, rows: list[list[float]], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    key = (name, dtype, device)
    if key not in _cache:
        _cache[key] = torch.tensor(rows, dtype=dtype, device=device)
    return _cache[key]


def _base_grid(h: int, w: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Pixel centres in [-1, 1] (align_corners=False): ``[2, H*W]`` rows x and y."""
    key = ("grid", h, w, dtype, device)
    if key not in _cache:
        ys = (torch.arange(h, dtype=dtype, device=device) * 2 + 1) / h - 1
        xs = (torch.arange(w, dtype=dtype, device=device) * 2 + 1) / w - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        _cache[key] = torch.stack([gx.reshape(-1), gy.reshape(-1)])
    return _cache[key]


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        return (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]).expand_as(x)
    return x


def _smooth(x: torch.Tensor) -> torch.Tensor:
    """PIL's SMOOTH filter (centre 5, neighbours 1, /13) inside; the border keeps its pixels."""
    rows = x[:, :, :-2] + x[:, :, 1:-1] + x[:, :, 2:]  # a 3x3 box sum as two 1-D sums: cheaper
    box = rows[:, :, :, :-2] + rows[:, :, :, 1:-1] + rows[:, :, :, 2:]  # than avg_pool2d on CPU
    out = x.clone()
    out[:, :, 1:-1, 1:-1] = (box + 4 * x[:, :, 1:-1, 1:-1]) / 13
    return out


def _equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram equalisation per image and channel on 256 levels, batched with scatter_add."""
    b, c, h, w = x.shape
    levels = (x * 255).round().long().clamp(0, 255).reshape(b * c, h * w)
    ones = torch.ones_like(levels, dtype=x.dtype)
    hist = torch.zeros(b * c, 256, device=x.device, dtype=x.dtype).scatter_add_(1, levels, ones)
    cdf = hist.cumsum(1)
    cdf_min = torch.where(hist > 0, cdf, torch.full_like(cdf, float("inf"))).min(1, keepdim=True).values
    lut = ((cdf - cdf_min) / (h * w - cdf_min).clamp_min(1)).clamp(0, 1)
    out = lut.gather(1, levels).reshape(b, c, h, w)
    single_level = (hist > 0).sum(1).reshape(b, c, 1, 1) <= 1
    return torch.where(single_level, x, out)


def _autocontrast(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin(dim=(2, 3), keepdim=True)
    hi = x.amax(dim=(2, 3), keepdim=True)
    return torch.where(hi > lo, (x - lo) / (hi - lo).clamp_min(1e-12), x)


def rand_augment(x: torch.Tensor, n: int, magnitude: float, rng: AugmentRNG) -> torch.Tensor:
    """RandAugment: ``n`` rounds, each applying one op per image chosen uniformly from the 14 of
    Cubuk et al. (2020) at ``magnitude`` (0-10 scale; signed ops take a random sign).

    Each op runs only on the images that drew it (the geometric ones share one warp), so the
    work is one op per image per round; the fixed cost per op is amortised by augmenting several
    batches at once (see :class:`lossevo.data.AugmentedBatches`)."""
    f = magnitude / 10.0
    b, dev, dt = x.shape[0], x.device, x.dtype
    warp_table = _table("warp", _WARP_TABLE, dt, dev)
    x = x.clone()  # the ops write into x
    for _ in range(n):
        op = torch.randint(0, len(RANDAUG_OPS), (b,), generator=rng.tensor, device=dev)
        sign = torch.rand(b, generator=rng.tensor, device=dev).lt(0.5).to(dt).mul_(-2).add_(1)
        order = torch.argsort(op, stable=True)
        counts = torch.bincount(op, minlength=len(RANDAUG_OPS)).tolist()
        groups = dict(zip(RANDAUG_OPS, torch.split(order, counts), strict=True))
        warped = torch.cat([groups[name] for name in _GEOMETRIC])
        if warped.numel():
            x[warped] = _warp(x[warped], warp_table[op[warped]] * sign[warped, None], f)
        for name, apply in _IMAGE_OPS.items():
            index = groups[name]
            if index.numel():
                x[index] = apply(x[index], sign[index, None, None, None], f)
    return x


def _warp(x: torch.Tensor, coef: torch.Tensor, f: float) -> torch.Tensor:
    """Rotate, shear or translate each image by its own affine map (one grid_sample)."""
    angle = coef[:, 0] * math.radians(30.0 * f)
    cos, sin = torch.cos(angle)[:, None], torch.sin(angle)[:, None]
    shear_x, shear_y = coef[:, 1:2] * (0.3 * f), coef[:, 2:3] * (0.3 * f)
    tx, ty = coef[:, 3:4] * (0.9 * f), coef[:, 4:5] * (0.9 * f)  # 0.45 f of the image in [-1, 1] units
    n, _, h, w = x.shape
    gx, gy = _base_grid(h, w, x.dtype, x.device)
    grid_x = cos * gx + (shear_x - sin) * gy + tx
    grid_y = (sin + shear_y) * gx + cos * gy + ty
    grid = torch.stack([grid_x, grid_y], dim=-1).view(n, h, w, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _blend_with(degenerate: torch.Tensor, x: torch.Tensor, s: torch.Tensor, f: float) -> torch.Tensor:
    """``degenerate + (1 ± 0.9 f) (x - degenerate)``, as PIL's ImageEnhance."""
    return torch.lerp(degenerate, x, 1 + s * (0.9 * f)).clamp_(0, 1)


def _posterize(x: torch.Tensor, s: torch.Tensor, f: float) -> torch.Tensor:
    step = float(2 ** (8 - max(1, 8 - round(4 * min(f, 1.75)))))
    return torch.floor(x * (255 / step)) * (step / 255)


_IMAGE_OPS = {
    "autocontrast": lambda x, s, f: _autocontrast(x),
    "equalize": lambda x, s, f: _equalize(x),
    "solarize": lambda x, s, f: torch.where(x >= 1.0 - min(f, 1.0), 1.0 - x, x),
    "posterize": _posterize,
    "color": lambda x, s, f: _blend_with(_grey(x), x, s, f),
    "contrast": lambda x, s, f: _blend_with(_grey(x).mean(dim=(1, 2, 3), keepdim=True), x, s, f),
    "brightness": lambda x, s, f: (x * (1 + s * (0.9 * f))).clamp_(0, 1),
    "sharpness": lambda x, s, f: _blend_with(_smooth(x), x, s, f),
}


# ---------------------------------------------------------------------------- the pipeline
@dataclass(frozen=True)
class Phase:
    """One phase of progressive RandAug (MH-NLE, Tables 12 and 13)."""

    image_size: int | None
    dropout: float | None
    magnitude: float | None


class Pipeline:
    """The augmentation of one training run; see the module docstring for the order of steps.

    ``randaug``: ``{n, m}`` or null. ``cutout``: patch size or null. ``mixup`` / ``cutmix``:
    Beta α or null (both set: one of them per batch, 50/50, as timm does). ``image_size``: resize
    train and evaluation images (e.g. 96 for the EfficientNetV2 surrogate). ``progressive``:
    ``{phase_steps, image_size: [...], dropout: [...], magnitude: [...]}``, switched by training
    step; its magnitude replaces ``randaug.m`` and its dropout is applied to the model.
    """

    def __init__(
        self,
        name: str = "custom",
        pad: int = 4,
        flip: bool = True,
        cutout: int | None = None,
        mixup: float | None = None,
        cutmix: float | None = None,
        randaug: dict[str, Any] | None = None,
        image_size: int | None = None,
        progressive: dict[str, Any] | None = None,
        num_classes: int | None = None,
    ) -> None:
        self.name = name
        self.pad, self.flip, self.cutout = pad, flip, cutout
        self.mixup, self.cutmix = mixup, cutmix
        self.randaug = dict(randaug) if randaug else None
        if self.randaug is not None and set(self.randaug) - {"n", "m"}:
            raise LossevoError(f"augment.randaug takes n and m, got {sorted(self.randaug)}")
        self.image_size = image_size
        self.num_classes = num_classes
        if (mixup or cutmix) and not num_classes:
            raise LossevoError("mixup and cutmix need num_classes (the surrogate passes the dataset's)")
        self.phases: list[Phase] = []
        self.phase_steps = 0
        if progressive:
            self._progressive(dict(progressive))

    def _progressive(self, spec: dict[str, Any]) -> None:
        unknown = set(spec) - {"phase_steps", "image_size", "dropout", "magnitude"}
        if unknown:
            raise LossevoError(f"augment.progressive has unknown key(s) {sorted(unknown)}")
        self.phase_steps = int(spec.get("phase_steps", 0))
        columns = [list(spec.get(k) or []) for k in ("image_size", "dropout", "magnitude")]
        count = max(map(len, columns))
        if self.phase_steps < 1 or count == 0 or any(c and len(c) != count for c in columns):
            raise LossevoError(
                "augment.progressive needs phase_steps >= 1 and equally long lists of "
                "image_size / dropout / magnitude (one value per phase)"
            )
        self.phases = [Phase(*(column[i] if column else None for column in columns)) for i in range(count)]

    # ------------------------------------------------------------------ phases
    def phase(self, step: int) -> Phase | None:
        if not self.phases:
            return None
        return self.phases[min(step // self.phase_steps, len(self.phases) - 1)]

    def size_at(self, step: int) -> int | None:
        phase = self.phase(step)
        if phase is not None and phase.image_size:
            return int(phase.image_size)
        return self.image_size

    def dropout_at(self, step: int) -> float | None:
        phase = self.phase(step)
        return None if phase is None else phase.dropout

    def resize(self, x: torch.Tensor, step: int) -> torch.Tensor:
        """Resize to the image size in force at ``step`` (used for evaluation images too)."""
        size = self.size_at(step)
        if size is None or tuple(x.shape[-2:]) == (size, size):
            return x
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)

    # ------------------------------------------------------------------ apply
    def per_image(self, x: torch.Tensor, rng: AugmentRNG, step: int = 0) -> torch.Tensor:
        """Everything that treats images one by one: resize, RandAugment, crop, flip, cutout.
        Any number of images at once (several batches amortise the fixed cost per op)."""
        x = self.resize(x, step)
        if self.randaug is not None:
            phase = self.phase(step)
            m = (
                phase.magnitude
                if phase is not None and phase.magnitude is not None
                else self.randaug.get("m", 9)
            )
            x = rand_augment(x, int(self.randaug.get("n", 2)), float(m), rng)
        x = random_crop(x, self.pad, rng)
        if self.flip:
            x = random_hflip(x, rng)
        if self.cutout:
            x = cutout(x, int(self.cutout), rng)
        return x

    @property
    def mixes(self) -> bool:
        return bool(self.mixup or self.cutmix)

    def mix(self, x: torch.Tensor, y: torch.Tensor, rng: AugmentRNG) -> tuple[torch.Tensor, torch.Tensor]:
        """Mixup or CutMix within one batch (soft targets); identity when neither is on."""
        # Both on: one of them per batch, 50/50.
        if not (self.mixup or self.cutmix) or self.num_classes is None:  # __init__ requires both together
            return x, y
        use_mixup = rng.uniform() < 0.5 if self.mixup and self.cutmix else bool(self.mixup)
        if use_mixup and self.mixup:
            x, y = mixup(x, y, float(self.mixup), self.num_classes, rng)
        elif self.cutmix:
            x, y = cutmix(x, y, float(self.cutmix), self.num_classes, rng)
        return x, y

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, rng: AugmentRNG, step: int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch through the whole pipeline."""
        return self.mix(self.per_image(x, rng, step), y, rng)

    def __repr__(self) -> str:
        parts = [f"pad={self.pad}", f"flip={self.flip}"]
        for key in ("cutout", "mixup", "cutmix", "randaug", "image_size"):
            if getattr(self, key):
                parts.append(f"{key}={getattr(self, key)}")
        if self.phases:
            parts.append(f"progressive={len(self.phases)} phases of {self.phase_steps} steps")
        return f"Pipeline[{self.name}]({', '.join(parts)})"


def set_dropout(model: torch.nn.Module, p: float) -> None:
    """Set every dropout rate of a model (nn.Dropout modules and timm's ``drop_rate``)."""
    for module in model.modules():
        if isinstance(module, torch.nn.modules.dropout._DropoutNd):
            module.p = p
        if hasattr(module, "drop_rate") and isinstance(module.drop_rate, float):
            module.drop_rate = p  # type: ignore[assignment]  # a float attribute nn.Module types as Tensor | Module
