"""scikit-learn's bundled digits: 1,797 real 8x8 grey images, no files to find (the tests' data)."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from lossevo.data.splits import ImageSplits, holdout
from lossevo.errors import LossevoError


@lru_cache(maxsize=4)
def digits(
    val_size: int = 300,
    test_size: int = 300,
    split_seed: int = 0,
) -> ImageSplits:
    """scikit-learn's digits: 1,797 real 8x8 grey images, shipped with scikit-learn (tiny, for tests)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel values are 0..16; scale to the 0..255 range of every other dataset.
    images = np.clip(np.rint(bunch.images * (255 / 16)), 0, 255).astype(np.uint8)
    x = torch.from_numpy(images).unsqueeze(1)
    y = torch.from_numpy(bunch.target.astype(np.int64))
    if not 0 < test_size < len(x) - val_size:
        raise LossevoError(f"dataset.test_size must be between 1 and {len(x) - val_size - 1}")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed + 1))
    test, rest = order[:test_size], order[test_size:]
    train_x, train_y, val_x, val_y = holdout(x[rest], y[rest], val_size, split_seed)
    return ImageSplits(
        name="digits",
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=x[test],
        test_y=y[test],
        classes=tuple(str(i) for i in range(10)),
        source="sklearn.datasets.load_digits",
    )
