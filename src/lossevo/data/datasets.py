"""Datasets held in memory as uint8 image tensors, with a seeded validation holdout.

Each loader returns :class:`ImageSplits`: train / validation (held out of the training set with
a fixed ``split_seed``, so every candidate and run is ranked on the same images) / test.
Loaders are cached per process: a search loads its data once.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from lossevo.errors import LossevoError

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


def default_cache_dir() -> Path:
    """Where downloads go: ``$LOSSEVO_DATA_DIR`` or ``~/.cache/lossevo/data``."""
    env = os.environ.get("LOSSEVO_DATA_DIR")
    return Path(env) if env else Path.home() / ".cache" / "lossevo" / "data"


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
    # How the dataset is usually augmented (augment=base reads these through the config).
    crop_padding: int = 4
    hflip: bool = True
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
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.train_x)} train / {len(self.val_x)} val / "
            f"{len(self.test_x)} test, {self.shape} images, {self.num_classes} classes"
            + (f" ({self.source})" if self.source else "")
        )


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


# --------------------------------------------------------------------------- Fashion-MNIST
_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise LossevoError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise LossevoError(f"{path} is truncated: {len(data) - offset} bytes, expected {expected}")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def _idx_dir(folder: Path) -> Path | None:
    """``folder`` or a torchvision layout below it (``FashionMNIST/raw``) holding the IDX files."""
    for candidate in (folder, folder / "raw", folder / "FashionMNIST" / "raw"):
        if all(_find(candidate, stem) for stem in _IDX_FILES.values()):
            return candidate
    return None


def _find(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def locate_fashion_mnist(root: str | None, download: bool) -> Path:
    """Find the IDX files.

    An explicit ``root`` (config ``dataset.root`` or ``$LOSSEVO_FASHION_MNIST``) is the only place
    looked at (with ``download``, torchvision downloads into it). Without one: Debian's
    ``/usr/share/datasets/fashion-mnist``, then the cache (``$LOSSEVO_DATA_DIR``), downloading
    into the cache with ``download``.
    """
    explicit = root or os.environ.get("LOSSEVO_FASHION_MNIST")
    folders = [Path(explicit).expanduser()] if explicit else [DEBIAN_FASHION_MNIST, default_cache_dir()]
    for folder in folders:
        found = _idx_dir(folder)
        if found is not None:
            return found
    tried = ", ".join(str(f) for f in folders)
    if not download:
        raise LossevoError(f"Fashion-MNIST not found. {_FMNIST_HELP.format(tried=tried)}")
    target = folders[0] if explicit else default_cache_dir()
    try:
        from torchvision.datasets import FashionMNIST

        for train in (True, False):
            FashionMNIST(root=str(target), train=train, download=True)
    except Exception as err:  # network errors come in many types
        raise LossevoError(
            f"Fashion-MNIST download into {target} failed ({type(err).__name__}: {err}). "
            + _FMNIST_HELP.format(tried=tried)
        ) from None
    found = _idx_dir(target)
    if found is None:
        raise LossevoError(f"torchvision's download left no IDX files under {target}")
    return found


_FMNIST_HELP = (
    "Looked in: {tried}. Get it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, "
    "installs /usr/share/datasets/fashion-mnist), or point dataset.root= (or "
    "$LOSSEVO_FASHION_MNIST) at a folder holding the four *-idx*-ubyte(.gz) files, or pass "
    "dataset.download=true to fetch it with torchvision."
)


@lru_cache(maxsize=4)
def fashion_mnist(
    root: str | None = None,
    download: bool = False,
    val_size: int = 5000,
    split_seed: int = 0,
    train_size: int | None = None,
    crop_padding: int = 4,
    hflip: bool = True,
) -> ImageSplits:
    """Fashion-MNIST (70k real 28x28 grey images, 10 classes)."""
    folder = locate_fashion_mnist(root, download)
    arrays = {key: read_idx(_find(folder, stem)) for key, stem in _IDX_FILES.items()}  # type: ignore[arg-type]
    x = torch.from_numpy(arrays["train_x"].copy()).unsqueeze(1)
    y = torch.from_numpy(arrays["train_y"].astype(np.int64))
    train_x, train_y, val_x, val_y = holdout(x, y, val_size, split_seed, train_size)
    return ImageSplits(
        name="fashion_mnist",
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=torch.from_numpy(arrays["test_x"].copy()).unsqueeze(1),
        test_y=torch.from_numpy(arrays["test_y"].astype(np.int64)),
        classes=FASHION_MNIST_CLASSES,
        source=str(folder),
        crop_padding=crop_padding,
        hflip=hflip,
    )


# --------------------------------------------------------------------------- digits
@lru_cache(maxsize=4)
def digits(
    val_size: int = 300,
    test_size: int = 300,
    split_seed: int = 0,
    crop_padding: int = 1,
    hflip: bool = False,
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
        crop_padding=crop_padding,
        hflip=hflip,
    )
