"""Transfer datasets from image files of varying size, written by the tests in torchvision's layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat

from lossevo.data import caltech101, cars196, flowers102
from lossevo.errors import LossevoError


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOSSEVO_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def jpeg(path: Path, rng: np.random.Generator) -> None:
    """A JPEG of random size and colour (the transfer datasets' images vary in size)."""
    h, w = int(rng.integers(20, 60)), int(rng.integers(20, 60))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)


def test_flowers102_official_split(tmp_path: Path, cache_dir: Path) -> None:
    base = tmp_path / "flowers-102"
    rng = np.random.default_rng(0)
    n = 30
    for i in range(1, n + 1):
        jpeg(base / "jpg" / f"image_{i:05d}.jpg", rng)
    savemat(base / "imagelabels.mat", {"labels": (np.arange(n) % 3 + 1)[None, :]})
    savemat(
        base / "setid.mat",
        {"trnid": np.arange(1, 11)[None], "valid": np.arange(11, 16)[None], "tstid": np.arange(16, 31)[None]},
    )
    splits = flowers102.__wrapped__(root=str(tmp_path), image_size=24)
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (10, 5, 15)
    assert splits.shape == (3, 24, 24) and splits.train_x.dtype == torch.uint8
    assert splits.train_y.tolist() == [i % 3 for i in range(10)] and splits.num_classes == 3
    assert list(cache_dir.glob("resized/flowers102-*-train-24-*.pt"))
    again = flowers102.__wrapped__(root=str(tmp_path), image_size=24)  # from the cache
    assert torch.equal(again.test_x, splits.test_x)


def test_caltech101_folders_and_seeded_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    base = tmp_path / "caltech101" / "101_ObjectCategories"
    for name in ("accordion", "airplanes", "BACKGROUND_Google"):
        for i in range(8):
            jpeg(base / name / f"image_{i:04d}.jpg", rng)
    splits = caltech101.__wrapped__(root=str(tmp_path), image_size=16, val_size=3, test_size=4)
    assert splits.classes == ("accordion", "airplanes")  # the background class is left out
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (9, 3, 4)


def test_cars196_devkit_annotations(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    base = tmp_path / "stanford_cars"
    dtype = [("fname", "O"), ("class", "O")]
    for split, n, mat in (
        ("train", 12, base / "devkit" / "cars_train_annos.mat"),
        ("test", 6, base / "cars_test_annos_withlabels.mat"),
    ):
        records = np.array([(f"{i:05d}.jpg", i % 4 + 1) for i in range(n)], dtype=dtype)
        for name, _ in records:
            jpeg(base / f"cars_{split}" / name, rng)
        mat.parent.mkdir(parents=True, exist_ok=True)
        savemat(mat, {"annotations": records})
    savemat(base / "devkit" / "cars_meta.mat", {"class_names": np.array(["a", "b", "c", "d"], dtype=object)})
    splits = cars196.__wrapped__(root=str(tmp_path), image_size=20, val_size=2)
    assert splits.classes == ("a", "b", "c", "d")
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (10, 2, 6)
    assert int(splits.test_y.max()) == 3


@pytest.mark.parametrize("loader", [flowers102, caltech101, cars196])
def test_missing_transfer_datasets(loader, tmp_path: Path) -> None:
    with pytest.raises(LossevoError, match="not found"):
        loader.__wrapped__(root=str(tmp_path / "nowhere"))
