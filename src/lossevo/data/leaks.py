"""Test images that are exact copies of training or validation images.

A verdict on test data is only worth something if the test images are new: a user's folder whose
test split repeats training images (a file copied into both, a scrape that found the same image
twice) would grade memorisation. Copies are found after decoding and resizing, by the bytes of
each image, once when the data is loaded (not on the training path).
"""

from __future__ import annotations

import hashlib
import logging

import torch

from lossevo.data.splits import ImageSplits
from lossevo.errors import LossevoError

log = logging.getLogger("lossevo")

CHOICES = ("refuse", "drop", "keep")


def copies_in_test(train_x: torch.Tensor, val_x: torch.Tensor, test_x: torch.Tensor) -> torch.Tensor:
    """A bool mask over the test images: True where the image also is in train or val."""
    seen = {_digest(x) for x in (*train_x, *val_x)}
    return torch.tensor([_digest(x) in seen for x in test_x], dtype=torch.bool)


def _digest(image: torch.Tensor) -> bytes:
    return hashlib.blake2b(image.contiguous().numpy().tobytes(), digest_size=16).digest()


def refuse_copies(copies: torch.Tensor, name: str, examples: list[str], duplicates: str) -> None:
    """Stop on copies unless ``duplicates`` says otherwise (``drop``: the caller drops them)."""
    if duplicates not in CHOICES:
        raise LossevoError(f"dataset.duplicates={duplicates!r}: it must be one of {', '.join(CHOICES)}")
    found = int(copies.sum())
    if not found or duplicates != "refuse":
        return
    shown = f" (e.g. {', '.join(examples[:3])})" if examples else ""
    raise LossevoError(
        f"{name}: {found} of {len(copies)} test images are exact copies of training or validation "
        f"images{shown}; the verdict would test on data the losses trained on. Remove them from the "
        "test split, or set dataset.duplicates=drop (leave them out of the test split) or keep"
    )


def screen_test_split(
    splits: ImageSplits, where: str, duplicates: str, name_of: list[str] | None = None
) -> ImageSplits:
    """``splits`` with ``dataset.duplicates`` applied to its test images that copy training or
    validation images: refused (one line naming some, via ``name_of``: a name per test image),
    dropped from the test split, or kept; a warning counts them unless refused."""
    copies = copies_in_test(splits.train_x, splits.val_x, splits.test_x)
    examples = [n for n, c in zip(name_of or [], copies.tolist(), strict=False) if c]
    refuse_copies(copies, where, examples, duplicates)
    if not copies.any():
        return splits
    if duplicates == "drop":
        log.warning(
            "%s: %d test images are copies of training or validation images: left out of the test "
            "split (dataset.duplicates=drop)",
            where,
            int(copies.sum()),
        )
        splits.test_x, splits.test_y = splits.test_x[~copies], splits.test_y[~copies]
    else:
        log.warning(
            "%s: %d test images are copies of training or validation images (kept: dataset.duplicates=keep)",
            where,
            int(copies.sum()),
        )
    return splits
