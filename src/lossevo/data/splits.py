"""What every dataset loader returns: :class:`ImageSplits` (uint8 image tensors and labels for
train, validation and test), the seeded validation holdout, and :func:`load_dataset`, which builds
the loader a ``dataset`` config names and checks its class count.

Each loader holds its data in memory and is cached per process: a search loads its data once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from lossevo.errors import LossevoError


@dataclass
class ImageSplits:
    """Images as uint8 ``[N, C, H, W]`` and labels as int64 ``[N]``."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    source: str = ""
    # Splits the data did not bring and were held out of the training images ("val", "test"):
    # the verdict reports on a test split, so a user's data without one gets one, and is told so.
    held_out: tuple[str, ...] = ()
    mean: tuple[float, ...] = field(default=())
    std: tuple[float, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.mean:
            pixels = self.train_x.float().div_(255)
            self.mean = tuple(pixels.mean(dim=(0, 2, 3)).tolist())
            self.std = tuple(pixels.std(dim=(0, 2, 3)).tolist())

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.train_x.shape[1:]
        return int(c), int(h), int(w)

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.train_x)} train / {len(self.val_x)} val / "
            f"{len(self.test_x)} test, {self.shape} images, {self.num_classes} classes"
            + (f" ({self.source})" if self.source else "")
            + (
                f"; {' and '.join(self.held_out)} held out of the training images (dataset.split_seed)"
                if self.held_out
                else ""
            )
        )


# Keys of a dataset config that other nodes read (augment=base pads and flips by them, the
# TaylorGLO invariant needs the class count), not arguments of the loader.
CONFIG_KEYS = ("crop_padding", "hflip", "num_classes")


def load_dataset(node: Any) -> ImageSplits:
    """The dataset a ``dataset`` config node names; its ``num_classes`` must match the data's."""
    from omegaconf import OmegaConf

    from lossevo.config import build

    loader = OmegaConf.masked_copy(node, [k for k in node if k not in CONFIG_KEYS])
    data: ImageSplits = build(loader, "dataset")
    expected = node.get("num_classes")
    if expected is not None and int(expected) != data.num_classes:
        raise LossevoError(
            f"dataset.num_classes={expected}, but {data.name} has {data.num_classes} classes; "
            f"set dataset.num_classes={data.num_classes}"
        )
    return data


def holdout(
    x: torch.Tensor, y: torch.Tensor, val_size: int, split_seed: int, train_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``val_size`` images off the training set with a seeded permutation."""
    if not 0 < val_size < len(x):
        raise LossevoError(f"dataset.val_size must be between 1 and {len(x) - 1}, got {val_size}")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed))
    val, train = order[:val_size], order[val_size:]
    if train_size is not None:
        if not 0 < train_size <= len(train):
            raise LossevoError(f"dataset.train_size must be between 1 and {len(train)}, got {train_size}")
        train = train[:train_size]
    return x[train], y[train], x[val], y[val]
