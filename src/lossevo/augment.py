"""Batched image augmentation on the training device (REFERENCE §4).

Augmentations take float images in [0, 1] ``[B, C, H, W]`` and targets (indices or
probabilities) and return both, so techniques that mix labels (mixup, cutmix) fit the same call.
Randomness comes from a seeded ``torch.Generator`` on the images' device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad`` and crop back to size at a random offset per image."""
    if pad <= 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    top = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator, device=x.device)
    left = torch.randint(0, 2 * pad + 1, (b, 1), generator=generator, device=x.device)
    rows = (top + torch.arange(h, device=x.device))[:, :, None]  # [B, H, 1]
    cols = (left + torch.arange(w, device=x.device))[:, None, :]  # [B, 1, W]
    batch = torch.arange(b, device=x.device)[:, None, None]
    # Advanced indexing around the channel slice yields [B, H, W, C].
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()


def random_hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


class Base:
    """``base``: zero-pad, random crop back to size, random horizontal flip."""

    def __init__(self, pad: int = 4, flip: bool = True) -> None:
        self.pad = pad
        self.flip = flip

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = random_crop(x, self.pad, generator)
        if self.flip:
            x = random_hflip(x, generator)
        return x, y

    def __repr__(self) -> str:
        return f"Base(pad={self.pad}, flip={self.flip})"


class Identity:
    """No augmentation."""

    def __call__(
        self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return x, y
