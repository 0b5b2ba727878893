"""Datasets in their real on-disk formats, batch iterables and the base augmentation."""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from lossevo.data import (
    OrderedBatches,
    ShuffledBatches,
    cifar10,
    cifar100,
    digits,
    fashion_mnist,
    load_dataset,
    mnist,
    svhn,
)
from lossevo.data.augment import AugmentRNG, random_crop, random_hflip
from lossevo.data.idx import DEBIAN_FASHION_MNIST, read_idx
from lossevo.errors import LossevoError

from .conftest import compose_config


def write_idx(path: Path, array: np.ndarray) -> None:
    """The IDX format of (Fashion-)MNIST: magic 0,0,0x08,ndim then big-endian dims then bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def make_fashion_mnist(folder: Path, n_train: int = 120, n_test: int = 30, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_train, 28, 28)))
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", np.arange(n_train) % 10)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", rng.integers(0, 256, (n_test, 28, 28)))
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", np.arange(n_test) % 10)
    return folder


def test_fashion_mnist_from_a_folder_in_the_real_format(tmp_path: Path) -> None:
    folder = make_fashion_mnist(tmp_path / "fm")
    splits = fashion_mnist(root=str(folder), val_size=20, split_seed=3)
    assert splits.train_x.shape == (100, 1, 28, 28) and splits.train_x.dtype == torch.uint8
    assert splits.val_x.shape == (20, 1, 28, 28) and splits.test_x.shape == (30, 1, 28, 28)
    assert splits.num_classes == 10 and splits.source == str(folder)
    # The holdout is a seeded split of the training file: together they are the file.
    raw = torch.from_numpy(read_idx(folder / "train-images-idx3-ubyte.gz").copy())
    together = torch.cat([splits.train_x, splits.val_x]).flatten(1)
    assert sorted(map(bytes, together.numpy())) == sorted(map(bytes, raw.flatten(1).numpy()))
    again = fashion_mnist.__wrapped__(root=str(folder), val_size=20, split_seed=3)
    assert torch.equal(again.val_x, splits.val_x)
    other = fashion_mnist.__wrapped__(root=str(folder), val_size=20, split_seed=4)
    assert not torch.equal(other.val_x, splits.val_x)


def test_torchvision_layout_and_uncompressed_files(tmp_path: Path) -> None:
    make_fashion_mnist(tmp_path / "FashionMNIST" / "raw", gz=False)
    splits = fashion_mnist.__wrapped__(root=str(tmp_path), val_size=10)
    assert len(splits.train_x) == 110


def test_missing_dataset_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(LossevoError, match=r"apt-get install dataset-fashion-mnist.*dataset\.download=true"):
        fashion_mnist.__wrapped__(root=str(tmp_path / "nowhere"))


def test_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    folder = make_fashion_mnist(tmp_path / "fm", gz=False)
    path = folder / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(LossevoError, match="truncated"):
        fashion_mnist.__wrapped__(root=str(folder), val_size=10)


@pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(), reason="needs Debian's dataset-fashion-mnist (.ci/run installs it)"
)
def test_real_fashion_mnist_from_debian() -> None:
    splits = fashion_mnist(val_size=5000)
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (55000, 5000, 10000)
    assert splits.shape == (1, 28, 28)
    assert torch.bincount(splits.test_y).tolist() == [1000] * 10
    assert 0.28 < splits.mean[0] < 0.30  # the well-known Fashion-MNIST mean, 0.286


def test_digits_splits() -> None:
    splits = digits()
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (1197, 300, 300)
    assert splits.shape == (1, 8, 8) and int(splits.train_x.max()) == 255


def test_shuffled_batches_cover_each_epoch_and_repeat_with_the_seed() -> None:
    x = torch.arange(10).view(10, 1, 1, 1)
    y = torch.arange(10)
    it = iter(ShuffledBatches(x, y, 3, seed=5))
    epoch = [next(it) for _ in range(3)]  # 3 full batches per epoch, the last partial one dropped
    seen = torch.cat([b[1] for b in epoch])
    assert len(set(seen.tolist())) == 9
    assert all(torch.equal(bx.flatten(), by) for bx, by in epoch)
    again = iter(ShuffledBatches(x, y, 3, seed=5))
    assert all(torch.equal(next(again)[1], b[1]) for b in epoch)
    ordered = OrderedBatches(x, y, 4)
    assert len(ordered) == 3 and [b[1].tolist() for b in ordered] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_random_crop_takes_windows_of_the_padded_image() -> None:
    x = torch.rand(64, 3, 8, 8)
    out = random_crop(x, 2, AugmentRNG(0))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    offsets = set()
    for i in range(64):
        windows = padded[i].unfold(1, 8, 1).unfold(2, 8, 1)  # [C, 5, 5, 8, 8]
        match = (windows == out[i][:, None, None]).flatten(3).all(-1).all(0)  # [5, 5]
        assert match.any(), "each output is one window of its padded input"
        offsets.add(tuple(torch.nonzero(match)[0].tolist()))
    assert len(offsets) > 10, "offsets vary per image"
    assert torch.equal(random_crop(x, 0, AugmentRNG(0)), x)


def test_flip_is_per_image_and_seeded() -> None:
    x = torch.rand(32, 1, 5, 5)
    flipped = random_hflip(x, AugmentRNG(1))
    is_flip = [(torch.equal(flipped[i], x[i].flip(2)), torch.equal(flipped[i], x[i])) for i in range(32)]
    assert all(a or b for a, b in is_flip) and 5 < sum(a for a, _ in is_flip) < 27
    assert torch.equal(random_hflip(x, AugmentRNG(1)), flipped)


# ---------------------------------------------------------------------------- CIFAR, SVHN, MNIST
def make_cifar10(folder: Path, per_batch: int = 40, test: int = 30) -> Path:
    """CIFAR-10 as torchvision downloads it: cifar-10-batches-py/ with pickled batches."""
    base = folder / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", test)]:
        batch = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"labels": list(rng.integers(0, 10, n)),
        }
        (base / name).write_bytes(pickle.dumps(batch))
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    (base / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    return folder


def test_cifar10_in_its_pickled_format(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path)
    splits = cifar10.__wrapped__(root=str(root), val_size=50)
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (150, 50, 30)
    assert splits.shape == (3, 32, 32) and splits.classes[0] == "airplane" and splits.num_classes == 10
    first = pickle.loads((root / "cifar-10-batches-py" / "test_batch").read_bytes())[b"data"][0]
    assert torch.equal(splits.test_x[0], torch.from_numpy(first.reshape(3, 32, 32)))  # channel-major rows


def test_cifar100_in_its_pickled_format(tmp_path: Path) -> None:
    base = tmp_path / "cifar-100-python"
    base.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 120), ("test", 20)):
        data = {
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"fine_labels": list(rng.integers(0, 100, n)),
        }
        (base / name).write_bytes(pickle.dumps(data))
    (base / "meta").write_bytes(pickle.dumps({b"fine_label_names": [f"c{i}".encode() for i in range(100)]}))
    splits = cifar100.__wrapped__(root=str(tmp_path), val_size=20)
    assert splits.num_classes == 100 and len(splits.train_x) == 100 and len(splits.test_x) == 20


def test_svhn_in_its_matlab_format(tmp_path: Path) -> None:
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    for name, n in (("train", 60), ("test", 10)):
        labels = rng.integers(1, 11, (n, 1))  # SVHN labels the digit 0 as 10
        savemat(
            tmp_path / f"{name}_32x32.mat",
            {"X": rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8), "y": labels},
        )
    splits = svhn.__wrapped__(root=str(tmp_path), val_size=10)
    assert splits.shape == (3, 32, 32) and len(splits.train_x) == 50
    assert int(splits.train_y.max()) <= 9 and int(splits.train_y.min()) >= 0


def test_mnist_in_the_torchvision_layout(tmp_path: Path) -> None:
    make_fashion_mnist(tmp_path / "MNIST" / "raw")
    splits = mnist.__wrapped__(root=str(tmp_path), val_size=20)
    assert splits.name == "mnist" and len(splits.train_x) == 100


@pytest.mark.parametrize("loader", [cifar10, cifar100, svhn, mnist])
def test_missing_datasets_say_how_to_get_them(loader, tmp_path: Path) -> None:
    with pytest.raises(LossevoError, match=r"not found\. Looked in: .*dataset\.download=true"):
        loader.__wrapped__(root=str(tmp_path / "nowhere"))


def test_dataset_configs_compose(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    cfg = compose_config("evolve", ["dataset=cifar10", f"dataset.root={tmp_path}", "dataset.val_size=50"])
    splits = load_dataset(cfg.dataset)
    assert splits.name == "cifar10" and splits.num_classes == cfg.dataset.num_classes == 10
    # augment=base pads and flips as the dataset's config says (digits: no flip, 1-pixel pad)
    assert (cfg.augment.pad, cfg.augment.flip) == (4, True)
    digits_cfg = compose_config("evolve", ["dataset=digits"])
    assert (digits_cfg.augment.pad, digits_cfg.augment.flip) == (1, False)


def test_a_wrong_class_count_is_refused() -> None:
    cfg = compose_config("evolve", ["dataset=digits", "dataset.num_classes=100"])
    with pytest.raises(LossevoError, match=r"dataset.num_classes=100, but digits has 10 classes"):
        load_dataset(cfg.dataset)


class _RunsCode:
    """What a crafted data file holds: unpickling it calls os.system (plain pickle runs it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_a_cifar_batch_that_would_run_code_is_refused_unrun(tmp_path: Path) -> None:
    root = make_cifar10(tmp_path / "data")
    marker = tmp_path / "it-ran"
    batch = root / "cifar-10-batches-py" / "data_batch_1"
    batch.write_bytes(pickle.dumps({b"data": _RunsCode(marker), b"labels": [0]}))
    pickle.loads(pickle.dumps(_RunsCode(tmp_path / "plain-pickle-runs-it")))  # the file is a real attack
    assert (tmp_path / "plain-pickle-runs-it").exists()
    with pytest.raises(LossevoError) as err:
        cifar10.__wrapped__(root=str(root), val_size=50)
    assert not marker.exists(), "nothing ran"
    assert f"{batch} asks to load posix.system" in str(err.value)


def test_an_idx_header_larger_than_memory_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "wb") as f:  # 2**32-1 images of 2**16 x 2**16 pixels, and 4 bytes of data
        f.write(
            bytes([0, 0, 8, 3]) + (2**32 - 1).to_bytes(4, "big") + (2**16).to_bytes(4, "big") * 2 + b"abcd"
        )
    with pytest.raises(LossevoError, match="more than this machine's memory: not an MNIST file"):
        read_idx(path)
