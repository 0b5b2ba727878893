"""Your own images in torchvision's ``ImageFolder`` layout: ``dataset=image_folder dataset.root=<dir>``.

Either one sub-folder per class directly under ``root`` (validation and test held out with
``split_seed``), or ``root/train/<class>/`` with optional ``root/val/<class>/`` and
``root/test/<class>/`` (a missing split is held out of ``train``). Every image is decoded once,
brought to ``image_size`` (shorter side, centre crop) and kept as uint8 tensors like every other
dataset; the result is cached by file names, sizes and modification times under
``$LOSSEVO_DATA_DIR/resized``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from lossevo.data.files import Item, image_splits
from lossevo.data.leaks import screen_test_split
from lossevo.data.splits import ImageSplits
from lossevo.errors import LossevoError

# torchvision's IMG_EXTENSIONS
EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"})
SPLITS = ("train", "val", "test")


def count(size: float, total: int, key: str) -> int:
    """``dataset.<key>`` as a number of images: a fraction of ``total`` in (0, 1), or a count."""
    if 0 < size < 1:
        return max(1, round(size * total))
    if size >= 1 and float(size).is_integer():
        return int(size)
    raise LossevoError(f"dataset.{key} must be a fraction in (0, 1) or a whole number of images, got {size}")


def class_folders(folder: Path) -> list[Path]:
    """The class sub-folders of ``folder``, sorted by name (hidden ones ignored)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def images_in(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS and not p.name.startswith(".")
    )


def scan(folder: Path, classes: tuple[str, ...] | None = None) -> tuple[tuple[str, ...], list[Item]]:
    """Class names and (image, label) items of one ``<class>/`` tree; ``classes`` fixes the label
    order (a validation or test folder must use the training folder's class names)."""
    folders = class_folders(folder)
    if not folders:
        raise LossevoError(
            f"{folder} has no class folders: put each class's images in a sub-folder named after it "
            f"({folder}/<class>/*.jpg)"
        )
    names = tuple(f.name for f in folders)
    if classes is None:
        if len(names) < 2:
            raise LossevoError(f"{folder} has one class folder ({names[0]}); a classifier needs at least two")
        classes = names
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise LossevoError(
            f"{folder} has class folders the training images do not: {', '.join(unknown)}; "
            "every class of val/ and test/ needs a folder in train/"
        )
    items: list[Item] = []
    for sub in folders:
        found = images_in(sub)
        if not found:
            raise LossevoError(
                f"class folder {sub} holds no images ({', '.join(sorted(EXTENSIONS))}); "
                "add its images or remove the folder"
            )
        label = classes.index(sub.name)
        items.extend((path, label) for path in found)
    return classes, items


def _take(items: list[Item], size: float, key: str, seed: int) -> tuple[list[Item], list[Item]]:
    """A seeded holdout of ``dataset.<key>`` images off ``items``: (held out, rest)."""
    n = count(size, len(items), key)
    if not 0 < n < len(items):
        raise LossevoError(f"dataset.{key}={size} leaves no images: there are {len(items)}")
    order = torch.randperm(len(items), generator=torch.Generator().manual_seed(seed)).tolist()
    return [items[i] for i in order[:n]], [items[i] for i in order[n:]]


@lru_cache(maxsize=2)
def image_folder(
    root: str,
    image_size: int = 32,
    channels: int = 3,
    val_size: float = 0.1,
    test_size: float = 0.1,
    split_seed: int = 0,
    skip_unreadable: bool = False,
    duplicates: str = "refuse",
) -> ImageSplits:
    """Images in ``root/<class>/`` or ``root/{train,val,test}/<class>/`` (see the module docstring)."""
    folder = Path(str(root)).expanduser()
    if not folder.is_dir():
        raise LossevoError(f"dataset.root={root} is not a folder; point it at your images' folder")
    if channels not in (1, 3):
        raise LossevoError(f"dataset.channels must be 1 (grey) or 3 (colour), got {channels}")
    split_folders = {s: folder / s for s in SPLITS if (folder / s).is_dir()}
    if split_folders and "train" not in split_folders:
        raise LossevoError(f"{folder} has {'/'.join(split_folders)} but no train/ folder")
    classes, train = scan(split_folders.get("train", folder))
    test = scan(split_folders["test"], classes)[1] if "test" in split_folders else None
    val = scan(split_folders["val"], classes)[1] if "val" in split_folders else None
    held_out = tuple(s for s, found in (("val", val), ("test", test)) if found is None)
    if test is None:
        test, train = _take(train, test_size, "test_size", split_seed + 1)
    val_count = count(val_size, len(train), "val_size")
    name = folder.resolve().name
    splits = image_splits(
        name,
        folder,
        classes,
        image_size,
        train,
        val,
        test,
        val_count,
        split_seed,
        channels=channels,
        skip_unreadable=skip_unreadable,
    )
    splits.held_out = held_out
    names = [str(p.relative_to(folder)) for p, _ in test]
    return screen_test_split(
        splits, str(folder), duplicates, names if len(names) == len(splits.test_x) else None
    )
