"""Transfer datasets stored as image files of varying size: Flowers-102, Caltech-101, Cars-196.

Each image is decoded and brought to ``image_size`` × ``image_size`` once, per sample, with an
albumentations pipeline (shorter side to ``image_size``, centre crop), in a thread pool; the
result is kept as uint8 tensors like every other dataset (and cached on disk, keyed by folder
and size), so training augments them batched on the device. The on-disk layouts are
torchvision's:

* ``flowers-102/``: ``jpg/image_00001.jpg``…, ``imagelabels.mat``, ``setid.mat`` (official
  train / validation / test split).
* ``caltech101/101_ObjectCategories/<class>/*.jpg`` (``BACKGROUND_Google`` left out; no official
  split: seeded validation and test holdouts).
* ``stanford_cars/``: ``cars_train/``, ``cars_test/``, ``devkit/cars_train_annos.mat``,
  ``devkit/cars_meta.mat``, ``cars_test_annos_withlabels.mat``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from lossevo.data.sources import Source, default_cache_dir, first, locate, torchvision_fetch
from lossevo.data.splits import ImageSplits, holdout
from lossevo.errors import LossevoError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no network check at import

Item = tuple[Path, int]
T = TypeVar("T")
log = logging.getLogger(__name__)


def _resizer(size: int) -> Callable[[np.ndarray], np.ndarray]:
    import albumentations as A

    pipeline = A.Compose([A.SmallestMaxSize(max_size=size), A.CenterCrop(height=size, width=size)])
    return lambda image: pipeline(image=image)["image"]


def _decode(path: Path, resize: Callable[[np.ndarray], np.ndarray], mode: str = "RGB") -> np.ndarray | None:
    """One image as a resized uint8 array (``mode`` "RGB" or "L"); ``None`` if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert(mode))
    except Exception as err:
        log.debug("cannot read %s: %s", path, err)
        return None
    return resize(array)


def load_images(
    items: Sequence[Item], size: int, cache_key: str, channels: int = 3, skip_unreadable: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode and resize every image once (threads, a progress bar on a terminal), as uint8
    ``[N, channels, size, size]``; cached under ``cache_key``. An unreadable image is an error
    naming it, or with ``skip_unreadable`` left out and counted in a warning."""
    fingerprint = _fingerprint(items, channels, skip_unreadable)
    cache = default_cache_dir() / "resized" / f"{cache_key}-{size}-{fingerprint}.pt"
    if cache.is_file():
        data = torch.load(cache, weights_only=True)
        return data["x"], data["y"]
    log.info(
        "decoding %d images (%s) to %dx%d once; cached in %s", len(items), cache_key, size, size, cache.parent
    )
    resize = _resizer(size)
    mode = {1: "L", 3: "RGB"}[channels]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        decoded = pool.map(lambda item: _decode(item[0], resize, mode), items)
        arrays = list(track(decoded, total=len(items), description=f"decoding {len(items)} images"))
    bad = [path for (path, _), array in zip(items, arrays, strict=True) if array is None]
    if bad and not skip_unreadable:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise LossevoError(
            f"cannot read image {bad[0]}{more}: not an image or corrupt; remove it, or pass "
            "dataset.skip_unreadable=true to leave unreadable images out"
        )
    if bad:
        log.warning("left out %d unreadable images (first: %s)", len(bad), bad[0])
    kept = [(array, label) for array, (_, label) in zip(arrays, items, strict=True) if array is not None]
    if not kept:
        raise LossevoError(f"none of the {len(items)} images could be read (first: {items[0][0]})")
    x = torch.from_numpy(np.stack([a for a, _ in kept]))
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    y = torch.tensor([label for _, label in kept], dtype=torch.int64)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"x": x.contiguous(), "y": y}, cache)
    return x.contiguous(), y


def _fingerprint(items: Sequence[Item], channels: int, skip_unreadable: bool) -> str:
    """A digest of the files (names, sizes, modification times) and how they are read: a cache
    entry is used only for the very files it was made from."""
    digest = hashlib.sha1(f"{channels}-{skip_unreadable}".encode())
    for path, label in items:
        stat = path.stat() if path.exists() else None
        digest.update(f"{path}|{label}|{stat and stat.st_size}|{stat and stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:12]


def track(items: Iterable[T], total: int, description: str) -> Iterator[T]:
    """``items`` with a rich progress bar on a terminal (nothing elsewhere)."""
    from rich.console import Console
    from rich.progress import track as rich_track

    console = Console(stderr=True)
    return iter(
        rich_track(
            items,
            total=total,
            description=description,
            console=console,
            disable=not console.is_terminal,
            transient=True,
        )
    )


def _key(folder: Path, name: str) -> str:
    return f"{name}-{hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:10]}"


def image_splits(
    name: str,
    folder: Path,
    classes: tuple[str, ...],
    size: int,
    train: list[Item],
    val: list[Item] | None,
    test: list[Item],
    val_size: int,
    split_seed: int,
    channels: int = 3,
    skip_unreadable: bool = False,
) -> ImageSplits:
    """Decode the splits' images (validation held out of train when ``val`` is ``None``)."""
    if not train or not test:
        raise LossevoError(f"{name} under {folder} has no images in its train or test split")
    key = _key(folder, name)

    def read(paths: Any, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return load_images(paths, size, f"{key}-{split}", channels=channels, skip_unreadable=skip_unreadable)

    train_x, train_y = read(train, "train")
    if val:
        val_x, val_y = read(val, "val")
    else:
        train_x, train_y, val_x, val_y = holdout(train_x, train_y, val_size, split_seed)
    test_x, test_y = read(test, "test")
    return ImageSplits(
        name=name,
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_y=test_y,
        classes=classes,
        source=str(folder),
    )


def _loadmat(path: Path) -> dict:
    from scipy.io import loadmat

    if not path.is_file():
        raise LossevoError(f"{path} is missing")
    try:
        return loadmat(path, squeeze_me=True)
    except Exception as err:
        raise LossevoError(f"{path} is not a MATLAB file ({type(err).__name__}: {err})") from None


# --------------------------------------------------------------------------- Flowers-102
def _find_flowers(folder: Path) -> Path | None:
    return first(
        folder / "flowers-102", folder, holding=lambda f: (f / "jpg").is_dir() and (f / "setid.mat").is_file()
    )


FLOWERS = Source(
    "Oxford Flowers-102",
    "LOSSEVO_FLOWERS102",
    _find_flowers,
    torchvision_fetch("Flowers102", splits=[{"split": "train"}, {"split": "val"}, {"split": "test"}]),
    "flowers-102/ (jpg/, imagelabels.mat, setid.mat)",
)


@lru_cache(maxsize=2)
def flowers102(
    root: str | None = None,
    download: bool = False,
    image_size: int = 128,
    val_size: int = 1020,
    split_seed: int = 0,
) -> ImageSplits:
    """Oxford Flowers-102 with its official train (1,020) / validation (1,020) / test (6,149) split."""
    folder = locate(FLOWERS, root, download)
    labels = np.atleast_1d(_loadmat(folder / "imagelabels.mat")["labels"]).astype(int) - 1
    ids = _loadmat(folder / "setid.mat")

    def items(key: str) -> list[Item]:
        return [(folder / "jpg" / f"image_{i:05d}.jpg", int(labels[i - 1])) for i in np.atleast_1d(ids[key])]

    classes = tuple(str(i) for i in range(int(labels.max()) + 1))
    return image_splits(
        "flowers102",
        folder,
        classes,
        image_size,
        items("trnid"),
        items("valid"),
        items("tstid"),
        val_size,
        split_seed,
    )


# --------------------------------------------------------------------------- Caltech-101
def _find_caltech(folder: Path) -> Path | None:
    return first(
        folder / "caltech101" / "101_ObjectCategories",
        folder / "101_ObjectCategories",
        folder,
        holding=lambda f: f.is_dir() and f.name == "101_ObjectCategories",
    )


CALTECH = Source(
    "Caltech-101",
    "LOSSEVO_CALTECH101",
    _find_caltech,
    torchvision_fetch("Caltech101", splits=[{}]),
    "caltech101/101_ObjectCategories/<class>/*.jpg",
)


@lru_cache(maxsize=2)
def caltech101(
    root: str | None = None,
    download: bool = False,
    image_size: int = 128,
    val_size: int = 915,
    test_size: int = 1829,
    split_seed: int = 0,
) -> ImageSplits:
    """Caltech-101 (101 classes; no official split: seeded test and validation holdouts)."""
    folder = locate(CALTECH, root, download)
    classes = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name != "BACKGROUND_Google"))
    everything = [
        (path, label) for label, name in enumerate(classes) for path in sorted((folder / name).glob("*.jpg"))
    ]
    if not 0 < test_size < len(everything):
        raise LossevoError(f"dataset.test_size must be between 1 and {len(everything) - 1}")
    order = torch.randperm(len(everything), generator=torch.Generator().manual_seed(split_seed + 1)).tolist()
    test = [everything[i] for i in order[:test_size]]
    train = [everything[i] for i in order[test_size:]]
    return image_splits(
        "caltech101",
        folder.parent,
        classes,
        image_size,
        train,
        None,
        test,
        val_size,
        split_seed,
    )


# --------------------------------------------------------------------------- Stanford Cars
def _find_cars(folder: Path) -> Path | None:
    return first(
        folder / "stanford_cars",
        folder,
        holding=lambda f: (f / "cars_train").is_dir() and (f / "devkit" / "cars_train_annos.mat").is_file(),
    )


CARS = Source(
    "Stanford Cars-196",
    "LOSSEVO_CARS196",
    _find_cars,
    torchvision_fetch("StanfordCars", splits=[{"split": "train"}, {"split": "test"}]),
    "stanford_cars/ (cars_train/, cars_test/, devkit/cars_train_annos.mat, devkit/cars_meta.mat, "
    "cars_test_annos_withlabels.mat)",
    install="torchvision's download of this dataset is broken upstream; get the files from Kaggle. ",
)


def _annotations(path: Path, images: Path) -> list[Item]:
    records = np.atleast_1d(_loadmat(path)["annotations"])
    return [(images / str(r["fname"]), int(r["class"]) - 1) for r in records]


@lru_cache(maxsize=2)
def cars196(
    root: str | None = None,
    download: bool = False,
    image_size: int = 128,
    val_size: int = 814,
    split_seed: int = 0,
) -> ImageSplits:
    """Stanford Cars (196 classes; official train / test split, seeded validation holdout)."""
    folder = locate(CARS, root, download)
    names = np.atleast_1d(_loadmat(folder / "devkit" / "cars_meta.mat")["class_names"])
    train = _annotations(folder / "devkit" / "cars_train_annos.mat", folder / "cars_train")
    test = _annotations(folder / "cars_test_annos_withlabels.mat", folder / "cars_test")
    return image_splits(
        "cars196",
        folder,
        tuple(str(n) for n in names),
        image_size,
        train,
        None,
        test,
        val_size,
        split_seed,
    )
