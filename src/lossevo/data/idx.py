"""MNIST's file format (IDX) and the datasets stored in it: Fashion-MNIST and MNIST."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from lossevo.data.sources import Source, first, locate, torchvision_fetch
from lossevo.data.splits import ImageSplits, holdout
from lossevo.errors import LossevoError
from lossevo.machine import memory_bytes

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not. Its header says how large it is: a size
    beyond this machine's memory is refused before anything is read past the header."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        head = handle.read(4)
        if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
            raise LossevoError(f"{path} is not an IDX file of unsigned bytes")
        ndim = head[3]
        raw_dims = handle.read(4 * ndim)
        dims = [int.from_bytes(raw_dims[4 * i : 4 * i + 4], "big") for i in range(ndim)]
        expected = int(np.prod(dims, dtype=np.float64))
        if len(raw_dims) < 4 * ndim or expected > memory_bytes():
            raise LossevoError(
                f"{path} declares {dims} bytes, more than this machine's memory: not an MNIST file"
            )
        data = handle.read(expected + 1)  # one byte more shows a file longer than it says
    if len(data) != expected:
        raise LossevoError(f"{path} holds {len(data)} bytes of images, its header says {expected}")
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _found(folder: Path, stem: str) -> Path:
    """An IDX file the finder already saw in ``folder``."""
    path = _find(folder, stem)
    if path is None:
        raise LossevoError(f"{folder} has no {stem}(.gz)")
    return path


def _idx_finder(torchvision_name: str) -> Callable[[Path], Path | None]:
    """``folder`` or a torchvision layout below it (``<Name>/raw``) holding the four IDX files."""

    def find(folder: Path) -> Path | None:
        return first(
            folder,
            folder / "raw",
            folder / torchvision_name / "raw",
            holding=lambda f: all(_find(f, stem) for stem in _IDX_FILES.values()),
        )

    return find


_IDX_HELP = "the four *-idx*-ubyte(.gz) files"
FASHION_MNIST = Source(
    "Fashion-MNIST",
    "LOSSEVO_FASHION_MNIST",
    _idx_finder("FashionMNIST"),
    torchvision_fetch("FashionMNIST"),
    _IDX_HELP,
    install="Get it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, installs "
    "/usr/share/datasets/fashion-mnist). ",
    defaults=(DEBIAN_FASHION_MNIST,),
)
MNIST = Source("MNIST", "LOSSEVO_MNIST", _idx_finder("MNIST"), torchvision_fetch("MNIST"), _IDX_HELP)


def _idx_splits(
    name: str,
    folder: Path,
    classes: tuple[str, ...],
    val_size: int,
    split_seed: int,
    train_size: int | None,
) -> ImageSplits:
    arrays = {key: read_idx(_found(folder, stem)) for key, stem in _IDX_FILES.items()}
    x = torch.from_numpy(arrays["train_x"].copy()).unsqueeze(1)
    y = torch.from_numpy(arrays["train_y"].astype(np.int64))
    train_x, train_y, val_x, val_y = holdout(x, y, val_size, split_seed, train_size)
    return ImageSplits(
        name=name,
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=torch.from_numpy(arrays["test_x"].copy()).unsqueeze(1),
        test_y=torch.from_numpy(arrays["test_y"].astype(np.int64)),
        classes=classes,
        source=str(folder),
    )


@lru_cache(maxsize=4)
def fashion_mnist(
    root: str | None = None,
    download: bool = False,
    val_size: int = 5000,
    split_seed: int = 0,
    train_size: int | None = None,
) -> ImageSplits:
    """Fashion-MNIST (70k real 28x28 grey images, 10 classes)."""
    folder = locate(FASHION_MNIST, root, download)
    return _idx_splits("fashion_mnist", folder, FASHION_MNIST_CLASSES, val_size, split_seed, train_size)


@lru_cache(maxsize=4)
def mnist(
    root: str | None = None,
    download: bool = False,
    val_size: int = 5000,
    split_seed: int = 0,
    train_size: int | None = None,
) -> ImageSplits:
    """MNIST (70k 28x28 handwritten digits; GLO's dataset)."""
    folder = locate(MNIST, root, download)
    classes = tuple(str(i) for i in range(10))
    return _idx_splits("mnist", folder, classes, val_size, split_seed, train_size)
