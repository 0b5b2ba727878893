"""Datasets held in memory as uint8 image tensors, with a seeded validation holdout.

Each loader returns :class:`ImageSplits`: train / validation (held out of the training set with
a fixed ``split_seed``, so every candidate and run is ranked on the same images) / test.
Loaders are cached per process: a search loads its data once.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossevo import safe_pickle
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


# --------------------------------------------------------------------------- locating files
@dataclass(frozen=True)
class Source:
    """Where a dataset's files may be and how to fetch them."""

    title: str
    env: str  # environment variable naming its folder
    find: Callable[[Path], Path | None]  # the folder holding the files, at or below a root
    fetch: Callable[[Path], None]  # torchvision's download into a folder
    files: str  # what the folder must hold, for the error message
    install: str = ""  # another way to get it, for the error message
    defaults: tuple[Path, ...] = ()  # folders looked at before the cache


def locate(source: Source, root: str | None, download: bool) -> Path:
    """The folder holding ``source``'s files.

    An explicit ``root`` (config ``dataset.root`` or the source's environment variable) is the
    only place looked at (with ``download``, torchvision downloads into it). Without one: the
    source's default folders, then the cache (``$LOSSEVO_DATA_DIR``), downloading into the cache
    with ``download``.
    """
    explicit = root or os.environ.get(source.env)
    folders = [Path(explicit).expanduser()] if explicit else [*source.defaults, default_cache_dir()]
    for folder in folders:
        found = source.find(folder)
        if found is not None:
            return found
    tried = ", ".join(str(f) for f in folders)
    help_text = (
        f"Looked in: {tried}. {source.install}Point dataset.root= (or ${source.env}) at a folder "
        f"holding {source.files}, or pass dataset.download=true to fetch it with torchvision."
    )
    if not download:
        raise LossevoError(f"{source.title} not found. {help_text}")
    target = folders[0] if explicit else default_cache_dir()
    try:
        source.fetch(target)
    except Exception as err:  # network errors come in many types
        raise LossevoError(
            f"{source.title} download into {target} failed ({type(err).__name__}: {err}). {help_text}"
        ) from None
    found = source.find(target)
    if found is None:
        raise LossevoError(f"torchvision's download left no {source.title} files under {target}")
    return found


def _first(*folders: Path, holding: Callable[[Path], bool]) -> Path | None:
    return next((f for f in folders if holding(f)), None)


# --------------------------------------------------------------------------- MNIST formats
_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def memory_bytes() -> int:
    """This machine's physical memory, which no array a data file declares may exceed."""
    return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


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
        return _first(
            folder,
            folder / "raw",
            folder / torchvision_name / "raw",
            holding=lambda f: all(_find(f, stem) for stem in _IDX_FILES.values()),
        )

    return find


def _torchvision_fetch(cls_name: str, **splits: Any) -> Callable[[Path], None]:
    def fetch(folder: Path) -> None:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        for kwargs in splits.get("splits", [{"train": True}, {"train": False}]):
            cls(root=str(folder), download=True, **kwargs)

    return fetch


_IDX_HELP = "the four *-idx*-ubyte(.gz) files"
SOURCES: dict[str, Source] = {
    "fashion_mnist": Source(
        "Fashion-MNIST",
        "LOSSEVO_FASHION_MNIST",
        _idx_finder("FashionMNIST"),
        _torchvision_fetch("FashionMNIST"),
        _IDX_HELP,
        install="Get it with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu, installs "
        "/usr/share/datasets/fashion-mnist). ",
        defaults=(DEBIAN_FASHION_MNIST,),
    ),
    "mnist": Source("MNIST", "LOSSEVO_MNIST", _idx_finder("MNIST"), _torchvision_fetch("MNIST"), _IDX_HELP),
}


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
    folder = locate(SOURCES["fashion_mnist"], root, download)
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
    folder = locate(SOURCES["mnist"], root, download)
    classes = tuple(str(i) for i in range(10))
    return _idx_splits("mnist", folder, classes, val_size, split_seed, train_size)


# --------------------------------------------------------------------------- CIFAR
def _cifar_finder(subfolder: str, names: tuple[str, ...]) -> Callable[[Path], Path | None]:
    def find(folder: Path) -> Path | None:
        return _first(folder / subfolder, folder, holding=lambda f: all((f / n).is_file() for n in names))

    return find


_CIFAR10_FILES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta")
_CIFAR100_FILES = ("train", "test", "meta")
SOURCES["cifar10"] = Source(
    "CIFAR-10",
    "LOSSEVO_CIFAR10",
    _cifar_finder("cifar-10-batches-py", _CIFAR10_FILES),
    _torchvision_fetch("CIFAR10"),
    "cifar-10-batches-py/ (data_batch_1..5, test_batch, batches.meta)",
)
SOURCES["cifar100"] = Source(
    "CIFAR-100",
    "LOSSEVO_CIFAR100",
    _cifar_finder("cifar-100-python", _CIFAR100_FILES),
    _torchvision_fetch("CIFAR100"),
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
    folder = locate(SOURCES["cifar10"], root, download)
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
    folder = locate(SOURCES["cifar100"], root, download)
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


# --------------------------------------------------------------------------- SVHN
def _find_svhn(folder: Path) -> Path | None:
    def holds(f: Path) -> bool:
        return (f / "train_32x32.mat").is_file() and (f / "test_32x32.mat").is_file()

    return _first(folder, folder / "svhn", holding=holds)


SOURCES["svhn"] = Source(
    "SVHN",
    "LOSSEVO_SVHN",
    _find_svhn,
    _torchvision_fetch("SVHN", splits=[{"split": "train"}, {"split": "test"}]),
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
    folder = locate(SOURCES["svhn"], root, download)
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


# --------------------------------------------------------------------------- digits
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
