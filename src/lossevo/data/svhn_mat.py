"""SVHN's MATLAB files (cropped digits, 32x32 colour; train and test splits)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from lossevo.data.sources import Source, first, locate, torchvision_fetch
from lossevo.data.splits import ImageSplits, holdout
from lossevo.errors import LossevoError


def _find_svhn(folder: Path) -> Path | None:
    def holds(f: Path) -> bool:
        return (f / "train_32x32.mat").is_file() and (f / "test_32x32.mat").is_file()

    return first(folder, folder / "svhn", holding=holds)


SVHN = Source(
    "SVHN",
    "LOSSEVO_SVHN",
    _find_svhn,
    torchvision_fetch("SVHN", splits=[{"split": "train"}, {"split": "test"}]),
    "train_32x32.mat and test_32x32.mat",
)


def _svhn_split(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
    except Exception as err:
        raise LossevoError(f"{path} is not a MATLAB file ({type(err).__name__}: {err})") from None
    x = torch.from_numpy(np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1))).astype(np.uint8))
    y = torch.from_numpy(mat["y"].astype(np.int64).reshape(-1) % 10)  # label 10 is the digit 0
    return x, y


@lru_cache(maxsize=4)
def svhn(
    root: str | None = None,
    download: bool = False,
    val_size: int = 5000,
    split_seed: int = 0,
    train_size: int | None = None,
) -> ImageSplits:
    """SVHN (cropped digits, 32x32 colour; train and test splits)."""
    folder = locate(SVHN, root, download)
    x, y = _svhn_split(folder / "train_32x32.mat")
    test_x, test_y = _svhn_split(folder / "test_32x32.mat")
    train_x, train_y, val_x, val_y = holdout(x, y, val_size, split_seed, train_size)
    return ImageSplits(
        name="svhn",
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
        classes=tuple(str(i) for i in range(10)),
        source=str(folder),
    )
