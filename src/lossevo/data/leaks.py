"""Test images that are exact copies of training or validation images.

A verdict on test data is only worth something if the test images are new: a user's folder whose
test split repeats training images (a file copied into both, a scrape that found the same image
twice) would grade memorisation. Copies are found after decoding and resizing, by the bytes of
each image, once when the data is loaded (not on the training path).
"""

from __future__ import annotations

import hashlib

import torch

from lossevo.errors import LossevoError

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
