"""CIFAR's python batches (pickles, read admitting only what the format holds) and the datasets
stored in them: CIFAR-10 and CIFAR-100."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from lossevo import safe_pickle
from lossevo.data.sources import Source, first, locate, torchvision_fetch
from lossevo.data.splits import ImageSplits, holdout
from lossevo.errors import LossevoError


def _cifar_finder(subfolder: str, names: tuple[str, ...]) -> Callable[[Path], Path | None]:
    def find(folder: Path) -> Path | None:
        return first(folder / subfolder, folder, holding=lambda f: all((f / n).is_file() for n in names))

    return find


_CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
_CIFAR100_FILES = ("train", "test", "meta")
CIFAR10 = Source(
    "CIFAR-10",
    "LOSSEVO_CIFAR10",
    _cifar_finder("cifar-10-batches-py", _CIFAR10_FILES),
    torchvision_fetch("CIFAR10"),
    "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)",
)
CIFAR100 = Source(
    "CIFAR-100",
    "LOSSEVO_CIFAR100",
    _cifar_finder("cifar-100-python", _CIFAR100_FILES),
    torchvision_fetch("CIFAR100"),
    "cifar-100-python/ (train, test, meta)",
)


def _unpickle(path: Path) -> dict:
    """A CIFAR python batch: a pickle by format, read admitting only what the format holds (dicts,
    lists, bytes, numbers, numpy arrays), so a crafted file cannot run code (lossevo.safe_pickle)."""
    batch = safe_pickle.load(path.read_bytes(), str(path), encoding="bytes")
    if not isinstance(batch, dict):
        raise LossevoError(f"{path} is not a CIFAR batch (a pickled dict), got {type(batch).__name__}")
    return batch


def _cifar_images(batch: dict, path: Path) -> torch.Tensor:
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise LossevoError(f"{path}: CIFAR data must be [N, 3072] bytes, got {data.shape}")
    return torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())


def _decode(names: list) -> tuple[str, ...]:
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _cifar(
    name: str,
    folder: Path,
    train_files: list[str],
    label_key: bytes,
    classes: tuple[str, ...],
    val_size: int,
    split_seed: int,
    train_size: int | None,
) -> ImageSplits:
    batches = [(_unpickle(folder / f), folder / f) for f in train_files]
    x = torch.cat([_cifar_images(b, p) for b, p in batches])
    y = torch.cat([torch.tensor(b[label_key], dtype=torch.int64) for b, _ in batches])
    test = (
        _unpickle(folder / "test_batch") if (folder / "test_batch").is_file() else _unpickle(folder / "test")
    )
    train_x, train_y, val_x, val_y = holdout(x, y, val_size, split_seed, train_size)
    return ImageSplits(
        name=name,
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=_cifar_images(test, folder),
        test_y=torch.tensor(test[label_key], dtype=torch.int64),
        classes=classes,
        source=str(folder),
    )


@lru_cache(maxsize=4)
def cifar10(
    root: str | None = None,
    download: bool = False,
    val_size: int = 5000,
    split_seed: int = 0,
    train_size: int | None = None,
) -> ImageSplits:
    """CIFAR-10 (60k 32x32 colour images, 10 classes); 5,000 training images held out, as the papers."""
    folder = locate(CIFAR10, root, download)
    classes = _decode(_unpickle(folder / "batches.meta")[b"label_names"])
    files = [f"data_batch_{i}" for i in range(1, 6)]
    return _cifar("cifar10", folder, files, b"labels", classes, val_size, split_seed, train_size)


@lru_cache(maxsize=4)
def cifar100(
    root: str | None = None,
    download: bool = False,
    val_size: int = 5000,
    split_seed: int = 0,
    train_size: int | None = None,
) -> ImageSplits:
    """CIFAR-100 (60k 32x32 colour images, 100 fine classes)."""
    folder = locate(CIFAR100, root, download)
    classes = _decode(_unpickle(folder / "meta")[b"fine_label_names"])
    return _cifar(
        "cifar100",
        folder,
        ["train"],
        b"fine_labels",
        classes,
        val_size,
        split_seed,
        train_size,
    )
