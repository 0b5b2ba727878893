"""Looking at a loss: its binary phenotype, gradient along it, and its 2-class surface.

Everything is computed through the loss's own call on two-class samples, so any :class:`Loss`
(a genome or a hand-written one) can be drawn: the phenotype puts the probability ``p`` of the
true class on the x-axis (wrong on the left, right on the right), the surface spans soft
targets ``y = [1-t, t]`` against predictions ``yhat = [1-p, p]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; no display needed

import matplotlib.pyplot as plt
import numpy as np
import torch

from lossevo.genome.integrity import PHENOTYPE_LOW, normalise
from lossevo.losses.base import Loss


def _two_class(p: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    yhat = torch.stack([1 - p, p], dim=-1)
    y = torch.stack([1 - t, t], dim=-1)
    return y, yhat, torch.log(yhat)


def phenotype(loss: Loss, points: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(p, loss, dloss/dp)`` of one 2-class sample whose true class has probability ``p``."""
    p = torch.linspace(PHENOTYPE_LOW, 1 - PHENOTYPE_LOW, points, dtype=torch.float64).float()
    p.requires_grad_(True)
    y, yhat, logits = _two_class(p, torch.ones_like(p))
    values = loss.per_sample(y, yhat, logits)
    (grad,) = torch.autograd.grad(values.sum(), p)
    return p.detach().numpy(), values.detach().numpy(), grad.numpy()


def surface(loss: Loss, points: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(t, p, loss)`` grids: target ``y = [1-t, t]`` against prediction ``yhat = [1-p, p]``."""
    axis = torch.linspace(0.01, 0.99, points)
    t, p = torch.meshgrid(axis, axis, indexing="ij")
    y, yhat, logits = _two_class(p.reshape(-1), t.reshape(-1))
    with torch.no_grad():
        values = loss.per_sample(y, yhat, logits).reshape(points, points)
    return t.numpy(), p.numpy(), values.numpy()


def clipped_limits(curves: list[np.ndarray], spread: float = 10.0) -> tuple[float, float] | None:
    """y-limits for raw phenotypes where a spike would flatten every other curve: the 1st-99th
    percentile range of all values, padded, when the full range is over ``spread`` times wider;
    ``None`` when every value fits."""
    values = np.concatenate([c[np.isfinite(c)] for c in curves]) if curves else np.array([])
    if values.size == 0:
        return None
    low, high = np.percentile(values, [1, 99])
    span = max(high - low, 1e-12)
    if values.max() - values.min() <= spread * span:
        return None
    pad = 0.1 * span
    return float(low - pad), float(high + pad)


def plot_phenotypes(losses: Mapping[str, Loss], path: Path) -> Path:
    """Raw and min-max normalised binary phenotypes of several losses, side by side; the raw
    axis is clipped (and says so) when one loss's spike would flatten the others."""
    fig, (raw_ax, norm_ax) = plt.subplots(1, 2, figsize=(12, 4.5))
    curves = []
    for name, loss in losses.items():
        p, values, _ = phenotype(loss)
        curves.append(values)
        raw_ax.plot(p, values, label=name)
        norm_ax.plot(p, normalise(torch.from_numpy(values)).numpy(), label=name)
    limits = clipped_limits(curves)
    if limits is None:
        raw_ax.set_title("binary phenotype")
    else:
        raw_ax.set_ylim(*limits)
        peak = max(float(np.nanmax(np.where(np.isfinite(c), c, np.nan))) for c in curves)
        low, high = limits
        raw_ax.set_title(f"binary phenotype (y clipped to [{low:.3g}, {high:.3g}]; peak {peak:.3g})")
    norm_ax.set_title("normalised")
    for ax in (raw_ax, norm_ax):
        ax.set_xlabel("probability of the true class")
        ax.set_ylabel("loss")
        ax.legend()
        ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_gradients(losses: Mapping[str, Loss], path: Path) -> Path:
    """dL/dp along the binary phenotype (symmetric log scale: the ends can be steep)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, loss in losses.items():
        p, _, grad = phenotype(loss)
        ax.plot(p, grad, label=name)
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set_xlabel("probability of the true class")
    ax.set_ylabel("dL / dp")
    ax.set_title("gradient along the binary phenotype")
    ax.axhline(0, color="black", lw=0.5)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_surface(name: str, loss: Loss, path: Path) -> Path:
    """The loss of a 2-class sample over soft target t and prediction p, as a 3D surface."""
    t, p, values = surface(loss)
    fig = plt.figure(figsize=(7, 5.5))
    ax = fig.add_subplot(projection="3d")
    ax.plot_surface(t, p, values, cmap="viridis", linewidth=0, antialiased=True)
    ax.set_xlabel("target y (class 1)")
    ax.set_ylabel("prediction ŷ (class 1)")
    ax.set_zlabel("loss")
    ax.set_title(f"{name}: L(y, ŷ) of a 2-class sample")
    return _save(fig, path)


def annotate_cells(ax: plt.Axes, image: Any, values: np.ndarray, fmt: str = "{:.2f}") -> list[Any]:
    """Write each finite value on its heatmap cell, white on dark colours and black on light ones."""
    texts = []
    for (i, j), value in np.ndenumerate(values):
        if not np.isfinite(value):
            continue
        r, g, b, _ = image.cmap(image.norm(value))
        colour = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
        texts.append(ax.text(j, i, fmt.format(value), ha="center", va="center", fontsize=8, color=colour))
    return texts


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_augmentations(columns: Mapping[str, torch.Tensor], path: Path) -> Path:
    """A grid of images: one column per technique (``[N, C, H, W]`` in [0, 1] each)."""
    names = list(columns)
    count = len(next(iter(columns.values())))
    fig, axes = plt.subplots(count, len(names), figsize=(1.6 * len(names), 1.6 * count), squeeze=False)
    for j, name in enumerate(names):
        batch = columns[name].detach().float().clamp(0, 1).cpu()
        for i in range(count):
            image = batch[i].permute(1, 2, 0).numpy()
            ax = axes[i][j]
            ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=9)
    return _save(fig, path)
