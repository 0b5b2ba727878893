"""Images and labels a user already has in arrays: ``dataset=tensors dataset.path=<file>``.

A ``.npz`` (``numpy.savez``) or a ``.pt`` file (``torch.save`` of a dict of tensors or arrays)
holding ``train_x``/``train_y`` with optional ``val_x``/``val_y`` and ``test_x``/``test_y``
(Keras' ``x_train``/``y_train``... names work too), or only ``x``/``y``; an optional ``classes``
lists the class names. A missing validation or test split is held out of the training images with
``split_seed``. Images are ``[N, H, W]``, ``[N, C, H, W]`` or ``[N, H, W, C]`` (``dataset.layout``
decides when the shape cannot: ``NCHW`` or ``NHWC``), uint8, or float in [0, 1] or [0, 255].
"""

from __future__ import annotations

import zipfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossevo.data.folders import count
from lossevo.data.leaks import screen_test_split
from lossevo.data.splits import ImageSplits, holdout
from lossevo.errors import LossevoError
from lossevo.machine import memory_bytes

# Accepted names of each array, first match wins.
NAMES = {
    "train_x": ("train_x", "x_train", "x", "images"),
    "train_y": ("train_y", "y_train", "y", "labels"),
    "val_x": ("val_x", "x_val"),
    "val_y": ("val_y", "y_val"),
    "test_x": ("test_x", "x_test"),
    "test_y": ("test_y", "y_test"),
}
CHANNELS = (1, 3, 4)
MAX_CLASSES = 100_000


def read_arrays(path: Path) -> dict[str, Any]:
    """The named arrays of a ``.npz`` or ``.pt`` file. A ``.npz`` member's size is read from its
    header before it is decompressed: one larger than this machine's memory is refused unread (a
    small file can declare a huge array)."""
    if not path.is_file():
        raise LossevoError(f"dataset.path={path} is not a file; point it at a .npz or .pt file")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                for name in archive.files:
                    _check_declared_size(path, archive.zip, name)
                return {k: archive[k] for k in archive.files}
        if path.suffix in (".pt", ".pth"):
            data = torch.load(path, map_location="cpu", weights_only=True)
            if isinstance(data, (tuple, list)) and len(data) == 2:
                data = {"x": data[0], "y": data[1]}
            if not isinstance(data, dict):
                raise LossevoError(f"{path} holds a {type(data).__name__}; save a dict of arrays")
            return data
    except LossevoError:
        raise
    except Exception as err:
        raise LossevoError(f"cannot read {path} ({type(err).__name__}: {err})") from None
    raise LossevoError(f"dataset.path={path}: use a .npz (numpy.savez) or .pt (torch.save) file")


def _check_declared_size(path: Path, archive: zipfile.ZipFile, name: str) -> None:
    with archive.open(f"{name}.npy") as member:
        version = np.lib.format.read_magic(member)
        header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        shape, _, dtype = header(member)
    size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if size > memory_bytes():
        raise LossevoError(
            f"{path}:{name} declares an array of shape {shape} ({size / 2**30:,.1f} GiB), more than this "
            f"machine's {memory_bytes() / 2**30:,.1f} GiB of memory; it was not loaded"
        )


def as_images(array: Any, layout: str, where: str) -> torch.Tensor:
    """uint8 ``[N, C, H, W]`` from an image array in any of the accepted forms."""
    x = torch.as_tensor(np.asarray(array)) if not isinstance(array, torch.Tensor) else array
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        shape = tuple(x.shape)
        raise LossevoError(f"{where} must be [N, H, W], [N, C, H, W] or [N, H, W, C]; got shape {shape}")
    if layout == "auto":
        first, last = x.shape[1] in CHANNELS, x.shape[3] in CHANNELS
        if first == last:
            raise LossevoError(
                f"{where} has shape {tuple(x.shape)}: cannot tell its channels; "
                "set dataset.layout=NCHW or NHWC"
            )
        layout = "NCHW" if first else "NHWC"
    if layout == "NHWC":
        x = x.permute(0, 3, 1, 2)
    elif layout != "NCHW":
        raise LossevoError(f"dataset.layout must be auto, NCHW or NHWC, got {layout}")
    if x.dtype == torch.uint8:
        return x.contiguous()
    if x.dtype.is_floating_point:
        x = x.double()
        if not torch.isfinite(x).all():
            raise LossevoError(f"{where} holds NaN or infinite values")
        low, high = float(x.min()), float(x.max())
        if low < 0 or high > 255:
            raise LossevoError(
                f"{where} is float in [{low:.3g}, {high:.3g}]; give raw pixels (uint8, or float in [0, 1] "
                "or [0, 255]), not normalised ones: lossevo normalises with the training set's statistics"
            )
        x = x * 255 if high <= 1 else x
        return x.round().to(torch.uint8).contiguous()
    if x.dtype in (torch.int8, torch.int16, torch.int32, torch.int64) and x.min() >= 0 and x.max() <= 255:
        return x.to(torch.uint8).contiguous()
    raise LossevoError(f"{where} has dtype {x.dtype}; use uint8, or float in [0, 1] or [0, 255]")


def as_labels(array: Any, n: int, where: str) -> torch.Tensor:
    y = torch.as_tensor(np.asarray(array)) if not isinstance(array, torch.Tensor) else array
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
        raise LossevoError(f"{where} must be whole-number class indices [N]; got {y.dtype} {tuple(y.shape)}")
    if len(y) != n:
        raise LossevoError(f"{where} has {len(y)} labels for {n} images; they must match one to one")
    if len(y) and int(y.min()) < 0:
        raise LossevoError(f"{where} has a negative label ({int(y.min())}); labels are 0 .. classes - 1")
    return y.long()


@lru_cache(maxsize=2)
def tensors(
    path: str,
    layout: str = "auto",
    val_size: float = 0.1,
    test_size: float = 0.1,
    split_seed: int = 0,
    duplicates: str = "refuse",
) -> ImageSplits:
    """Images and labels from a ``.npz`` or ``.pt`` file (see the module docstring); test images
    that copy training or validation images: ``duplicates`` (refuse | drop | keep)."""
    file = Path(str(path)).expanduser()
    raw = read_arrays(file)
    found = {key: next((n for n in names if n in raw), None) for key, names in NAMES.items()}
    if found["train_x"] is None or found["train_y"] is None:
        raise LossevoError(
            f"{file} holds {', '.join(sorted(raw)) or 'nothing'}; it needs train_x and train_y "
            "(or x_train/y_train, or x/y), and may add val_x/val_y and test_x/test_y"
        )
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for split in ("train", "val", "test"):
        xs, ys = found[f"{split}_x"], found[f"{split}_y"]
        if (xs is None) != (ys is None):
            raise LossevoError(f"{file} has {xs or ys} but not its {'labels' if ys is None else 'images'}")
        if xs is not None and ys is not None:
            x = as_images(raw[xs], layout, f"{file.name}:{xs}")
            splits[split] = (x, as_labels(raw[ys], len(x), f"{file.name}:{ys}"))
    shapes = {tuple(x.shape[1:]) for x, _ in splits.values()}
    if len(shapes) > 1:
        raise LossevoError(f"{file}: the splits' images differ in shape: {sorted(shapes)}")
    labels = torch.cat([y for _, y in splits.values()])
    names = raw.get("classes")
    if names is None:  # the classes are 0 .. max: a label far beyond the others is not a class index
        top, distinct = int(labels.max()), len(labels.unique())
        if top >= MAX_CLASSES or top >= 10 * distinct + 10:
            raise LossevoError(
                f"{file}: label {top} is far beyond its {distinct} distinct labels; labels must be class "
                f"indices 0 .. classes - 1 (at most {MAX_CLASSES:,}): remap them, or add `classes`"
            )
    classes = (
        tuple(str(c) for c in np.asarray(names).tolist())
        if names is not None
        else tuple(str(i) for i in range(int(labels.max()) + 1))
    )
    if int(labels.max()) >= len(classes):
        raise LossevoError(
            f"{file}: label {int(labels.max())} is out of range for its {len(classes)} classes"
        )
    if len(classes) < 2 or len(labels.unique()) < 2:
        raise LossevoError(f"{file}: every label is {int(labels[0])}; a classifier needs two classes or more")
    x, y = splits["train"]
    held_out = tuple(s for s in ("val", "test") if s not in splits)
    if "test" not in splits:
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(split_seed + 1))
        n = count(test_size, len(x), "test_size")
        splits["test"] = (x[order[:n]], y[order[:n]])
        x, y = x[order[n:]], y[order[n:]]
    if "val" in splits:
        (val_x, val_y), train_x, train_y = splits["val"], x, y
    else:
        train_x, train_y, val_x, val_y = holdout(x, y, count(val_size, len(x), "val_size"), split_seed)
    data = ImageSplits(
        name=file.stem,
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=splits["test"][0],
        test_y=splits["test"][1],
        classes=classes,
        source=str(file),
        held_out=held_out,
    )
    return screen_test_split(
        data, str(file), duplicates, [f"test image {i}" for i in range(len(data.test_x))]
    )
