"""A user's own data, model and configs: dataset=image_folder, dataset=tensors, model._target_,
--config-dir; real image files and array files written by the tests in their on-disk formats."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lossevo.data import image_folder, tensors
from lossevo.errors import LossevoError

from .conftest import TINY, run_script, script_env


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOSSEVO_DATA_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def write_image(path: Path, rng: np.random.Generator, mode: str = "RGB", suffix: str = ".png") -> None:
    """A real image file of random size (users' folders mix sizes and formats)."""
    h, w = int(rng.integers(12, 40)), int(rng.integers(12, 40))
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode).save(path.with_suffix(suffix))


def class_tree(folder: Path, counts: dict[str, int], seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for name, n in counts.items():
        for i in range(n):
            write_image(folder / name / f"{i:03d}", rng, suffix=(".png", ".jpg", ".JPEG")[i % 3])


# ---------------------------------------------------------------------------- image_folder
def test_flat_class_folders_are_split_with_the_seed(tmp_path: Path, cache_dir: Path) -> None:
    class_tree(tmp_path / "pets", {"dog": 12, "cat": 10, "bird": 8})
    (tmp_path / "pets" / ".thumbnails").mkdir()  # hidden folders are not classes
    splits = image_folder.__wrapped__(str(tmp_path / "pets"), image_size=16, val_size=5, test_size=0.2)
    assert splits.classes == ("bird", "cat", "dog")  # sorted, as torchvision's ImageFolder
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (19, 5, 6)
    assert splits.shape == (3, 16, 16) and splits.train_x.dtype == torch.uint8
    assert "val and test held out of the training images" in splits.summary()
    every = torch.cat([splits.train_y, splits.val_y, splits.test_y])
    assert torch.bincount(every).tolist() == [8, 10, 12]
    assert list(cache_dir.glob("resized/pets-*-train-16-*.pt"))
    again = image_folder.__wrapped__(str(tmp_path / "pets"), image_size=16, val_size=5, test_size=0.2)
    assert torch.equal(again.train_x, splits.train_x) and torch.equal(again.test_y, splits.test_y)
    other = image_folder.__wrapped__(str(tmp_path / "pets"), image_size=16, val_size=5, split_seed=1)
    assert not torch.equal(other.val_y, splits.val_y) or not torch.equal(other.val_x, splits.val_x)


def test_train_val_test_folders_and_grey_images(tmp_path: Path) -> None:
    root = tmp_path / "data"
    class_tree(root / "train", {"a": 6, "b": 6})
    class_tree(root / "val", {"a": 2, "b": 3}, seed=1)
    class_tree(root / "test", {"b": 4}, seed=2)  # a test folder may lack a class
    splits = image_folder.__wrapped__(str(root), image_size=8, channels=1)
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (12, 5, 4)
    assert splits.shape == (1, 8, 8) and splits.classes == ("a", "b")
    assert splits.test_y.tolist() == [1, 1, 1, 1] and splits.val_y.tolist() == [0, 0, 1, 1, 1]


def test_a_changed_image_is_decoded_again(tmp_path: Path) -> None:
    class_tree(tmp_path / "d", {"x": 4, "y": 4})
    before = image_folder.__wrapped__(str(tmp_path / "d"), image_size=8, val_size=1, test_size=1)
    first = sorted((tmp_path / "d" / "x").iterdir())[0]
    Image.new("RGB", (9, 9), (255, 255, 255)).save(first)
    after = image_folder.__wrapped__(str(tmp_path / "d"), image_size=8, val_size=1, test_size=1)
    everything = [torch.cat([s.train_x, s.val_x, s.test_x]) for s in (before, after)]
    assert not torch.equal(*everything)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda r: class_tree(r, {"only": 5}), "one class folder"),
        (lambda r: (class_tree(r, {"a": 3, "b": 3}), (r / "c").mkdir()), r"class folder .*c holds no images"),
        (lambda r: r.mkdir(), "has no class folders"),
        (
            lambda r: (class_tree(r / "train", {"a": 3, "b": 3}), class_tree(r / "val", {"z": 2})),
            "class folders the training images do not: z",
        ),
        (lambda r: class_tree(r / "test", {"a": 3, "b": 3}), "no train/ folder"),
    ],
    ids=["one-class", "empty-class", "no-classes", "unknown-val-class", "no-train"],
)
def test_bad_folders_are_named(tmp_path: Path, make, message: str) -> None:
    root = tmp_path / "d"
    make(root)
    with pytest.raises(LossevoError, match=message):
        image_folder.__wrapped__(str(root), image_size=8, val_size=1, test_size=1)


def test_a_corrupt_image_is_named_or_left_out_when_asked(tmp_path: Path) -> None:
    class_tree(tmp_path / "d", {"a": 5, "b": 5})
    broken = tmp_path / "d" / "b" / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 this is not a JPEG")
    with pytest.raises(LossevoError, match=r"cannot read image .*broken\.jpg.*skip_unreadable=true"):
        image_folder.__wrapped__(str(tmp_path / "d"), image_size=8, val_size=1, test_size=1)
    splits = image_folder.__wrapped__(
        str(tmp_path / "d"), image_size=8, val_size=1, test_size=1, skip_unreadable=True
    )
    assert len(splits.train_x) + len(splits.val_x) + len(splits.test_x) == 10  # 11 files, 1 left out


def test_missing_root_says_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(LossevoError, match=r"dataset\.root=.* is not a folder"):
        image_folder.__wrapped__(str(tmp_path / "nowhere"))


# ---------------------------------------------------------------------------- tensors
def test_npz_nhwc_uint8_with_every_split(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "mine.npz"
    np.savez(
        path,
        x_train=rng.integers(0, 256, (40, 10, 10, 3), dtype=np.uint8),
        y_train=np.arange(40) % 4,
        x_val=rng.integers(0, 256, (8, 10, 10, 3), dtype=np.uint8),
        y_val=np.arange(8) % 4,
        x_test=rng.integers(0, 256, (12, 10, 10, 3), dtype=np.uint8),
        y_test=np.arange(12) % 4,
        classes=np.array(["ant", "bee", "cat", "dog"]),
    )
    splits = tensors.__wrapped__(str(path))
    assert splits.shape == (3, 10, 10) and splits.classes == ("ant", "bee", "cat", "dog")
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (40, 8, 12)
    assert splits.held_out == () and "held out" not in splits.summary()
    raw = np.load(path)
    assert torch.equal(splits.test_x, torch.from_numpy(raw["x_test"]).permute(0, 3, 1, 2))


def test_pt_float_nchw_and_grey_hw_are_held_out(tmp_path: Path) -> None:
    x = torch.rand(50, 1, 9, 9)
    torch.save({"x": x, "y": torch.arange(50) % 5}, tmp_path / "a.pt")
    splits = tensors.__wrapped__(str(tmp_path / "a.pt"), val_size=0.2, test_size=5)
    assert (len(splits.train_x), len(splits.val_x), len(splits.test_x)) == (36, 9, 5)
    # The verdict reports on test data: a file without a test split gets one, and the user is told.
    assert splits.held_out == ("val", "test")
    assert "val and test held out of the training images" in splits.summary()
    assert splits.train_x.dtype == torch.uint8 and splits.num_classes == 5
    every = torch.cat([splits.train_x, splits.val_x, splits.test_x]).flatten().sort().values
    assert torch.equal(every, (x * 255).round().to(torch.uint8).flatten().sort().values)
    torch.save((torch.randint(0, 256, (30, 7, 7)).float(), torch.arange(30) % 2), tmp_path / "b.pt")
    assert tensors.__wrapped__(str(tmp_path / "b.pt"), val_size=3, test_size=3).shape == (1, 7, 7)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((10, 8, 8), np.uint8), "y": np.arange(9) % 2}, "9 labels for 10 images"),
        ({"x": np.zeros((10, 8, 8), np.uint8), "y": np.zeros(10, int)}, "every label is 0"),
        (
            {"x": np.zeros((10, 8, 8), np.uint8), "y": np.arange(10) % 3, "classes": np.array(["a", "b"])},
            "label 2 is out of range for its 2 classes",
        ),
        ({"x": np.zeros((10, 8, 8), np.uint8), "y": np.arange(10) - 1}, "negative label"),
        ({"x": np.zeros((10, 3, 8, 3), np.uint8), "y": np.arange(10) % 2}, "set dataset.layout=NCHW or NHWC"),
        ({"x": np.full((10, 8, 8), -0.5), "y": np.arange(10) % 2}, "not normalised ones"),
        ({"x": np.zeros((10, 8, 8), np.uint8), "y": np.arange(10) * 0.5}, "whole-number class indices"),
        ({"images_train": np.zeros((10, 8, 8), np.uint8)}, "needs train_x and train_y"),
    ],
    ids=["lengths", "one-class", "out-of-range", "negative", "layout", "normalised", "float-labels", "keys"],
)
def test_bad_arrays_are_named(tmp_path: Path, arrays: dict, message: str) -> None:
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(LossevoError, match=message):
        tensors.__wrapped__(str(tmp_path / "bad.npz"), val_size=2, test_size=2)


# ---------------------------------------------------------------------------- through the CLI
USER_MODEL = '''
"""A user's model, outside lossevo: it receives in_channels and num_classes by keyword."""
import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
'''


def user_project(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """A user's folder: a model module, a dataset file and their configs (outside the package)."""
    code = tmp_path / "code"
    (code / "my_models").mkdir(parents=True)
    (code / "my_models" / "__init__.py").write_text(textwrap.dedent(USER_MODEL))
    rng = np.random.default_rng(0)
    labels = np.arange(240) % 3
    brightness = (labels * 80).astype(np.uint8)[:, None, None, None]  # a learnable signal: the class
    images = rng.integers(0, 60, (240, 12, 12, 1), dtype=np.uint8) + brightness
    np.savez(tmp_path / "bright.npz", x_train=images, y_train=labels)
    configs = tmp_path / "configs"
    (configs / "dataset").mkdir(parents=True)
    (configs / "model").mkdir()
    (configs / "dataset" / "bright.yaml").write_text(
        f"_target_: lossevo.data.tensors\npath: {tmp_path / 'bright.npz'}\nval_size: 40\ntest_size: 40\n"
        "crop_padding: 1\nhflip: false\nnum_classes: 3\n"
    )
    (configs / "model" / "tiny.yaml").write_text("_target_: my_models.TinyNet\nwidth: 6\n")
    return code, configs, script_env(PYTHONPATH=str(code))


@pytest.mark.slow
def test_a_search_with_a_users_model_and_dataset_configs(tmp_path: Path) -> None:
    """--config-dir adds the user's dataset/ and model/ configs; workers import the user's module."""
    _, configs, env = user_project(tmp_path)
    run_dir = tmp_path / "run"
    result = run_script(
        "evolve.py",
        f"--config-dir={configs}",
        *TINY,
        "dataset=bright",
        "model=tiny",
        "surrogate.steps=200",
        "search.budget=3",
        "search.initial_population=3",
        "search.fidelity.rungs=[200]",
        "validate.runs=2",
        "validate.top_k=1",
        "validate.baselines=[reference]",
        "executor=local",
        "executor.workers=1",
        f"hydra.run.dir={run_dir}",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        statuses = [s for (s,) in db.execute("SELECT status FROM candidates")]
        reference = db.execute("SELECT fitness FROM reference").fetchall()
    assert len(statuses) == 3 and set(statuses) <= {"done", "failed"}
    assert reference and reference[0][0] > 0.6  # the user's model learned the user's data
    composed = (run_dir / "candidates" / "000002" / "config.yaml").read_text()
    assert "_target_: my_models.TinyNet" in composed and "bright.npz" in composed


@pytest.mark.slow
def test_train_on_an_image_folder_and_a_model_target_override(tmp_path: Path) -> None:
    _, _, env = user_project(tmp_path)
    class_tree(tmp_path / "imgs", {"a": 12, "b": 12})
    result = run_script(
        "train.py",
        *TINY,
        "dataset=image_folder",
        f"dataset.root={tmp_path / 'imgs'}",
        "dataset.image_size=10",
        "dataset.val_size=4",
        "dataset.test_size=4",
        "surrogate.batch_size=8",
        "model=custom",
        "model._target_=my_models.TinyNet",
        f"hydra.run.dir={tmp_path / 'run'}",
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imgs: 16 train / 4 val / 4 test, (3, 10, 10) images, 2 classes" in result.stdout + result.stderr


def test_a_model_target_on_a_builtin_model_config_names_the_fix(tmp_path: Path) -> None:
    _, _, env = user_project(tmp_path)
    result = run_script(
        "train.py", *TINY, "model._target_=my_models.TinyNet", f"hydra.run.dir={tmp_path / 'run'}", env=env
    )
    assert result.returncode == 2
    assert "widths" in result.stderr and "model=custom" in result.stderr


def test_an_unset_folder_or_model_class_says_which_key_to_set() -> None:
    from lossevo.config import build, compose_config
    from lossevo.data import load_dataset

    cfg = compose_config("evolve", ["dataset=image_folder", "model=custom"])
    with pytest.raises(LossevoError, match=r"^dataset\.root is not set: add dataset\.root=\.\.\."):
        load_dataset(cfg.dataset)
    with pytest.raises(LossevoError, match=r"^model\._target_ is not set"):
        build(cfg.model, "model", in_channels=1, num_classes=10)


def test_a_label_far_beyond_the_others_is_refused_before_allocating(tmp_path: Path) -> None:
    """labels [0, 1, 2**62] would make 2**62 classes: refused by name, at once."""
    path = tmp_path / "huge.npz"
    np.savez(path, x=np.zeros((12, 8, 8), np.uint8), y=np.array([0, 1, 2**62] * 4))
    with pytest.raises(LossevoError, match=r"label 4611686018427387904 is far beyond its 3 distinct labels"):
        tensors.__wrapped__(str(path), val_size=2, test_size=2)


def test_an_npz_member_declaring_more_than_memory_is_refused_unread(tmp_path: Path) -> None:
    """A small file can declare a huge array in its .npy header: refused before decompressing."""
    import io
    import zipfile

    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "|u1", "fortran_order": False, "shape": (2**40, 8, 8)}
    )
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", header.getvalue() + b"\0" * 64)
        archive.writestr("y.npy", header.getvalue())
    with pytest.raises(LossevoError, match=r"bomb.npz:x declares an array of shape \(1099511627776, 8, 8\)"):
        tensors.__wrapped__(str(path), val_size=2, test_size=2)


def test_test_images_that_copy_training_images_are_refused_or_dropped(tmp_path: Path) -> None:
    """#27.16: a verdict on copies of training images grades memorisation."""
    import shutil

    root = tmp_path / "data"
    class_tree(root / "train", {"a": 6, "b": 6})
    class_tree(root / "test", {"a": 3, "b": 3}, seed=5)
    shutil.copy(root / "train" / "a" / "001.jpg", root / "test" / "a" / "copy.jpg")
    shutil.copy(root / "train" / "b" / "000.png", root / "test" / "b" / "copy.png")
    copies = r"2 of 8 test images are exact copies of training or validation images \(e\.g\. test/a/copy\.jpg"
    with pytest.raises(LossevoError, match=copies):
        image_folder.__wrapped__(str(root), image_size=8)
    dropped = image_folder.__wrapped__(str(root), image_size=8, duplicates="drop")
    assert len(dropped.test_x) == 6
    kept = image_folder.__wrapped__(str(root), image_size=8, duplicates="keep")
    assert len(kept.test_x) == 8
    with pytest.raises(
        LossevoError, match=r"dataset\.duplicates='maybe': it must be one of refuse, drop, keep"
    ):
        image_folder.__wrapped__(str(root), image_size=8, duplicates="maybe")


def test_arrays_whose_test_images_copy_training_images_are_refused_or_dropped(tmp_path: Path) -> None:
    """#30.6: arrays get the same check as image folders (content hashes, after loading)."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    test = rng.integers(0, 256, (6, 8, 8), dtype=np.uint8)
    test[2], test[5] = train[3], train[7]  # two copies
    labels = np.arange(20) % 2
    path = tmp_path / "mine.npz"
    np.savez(path, train_x=train, train_y=labels, test_x=test, test_y=np.arange(6) % 2)
    with pytest.raises(
        LossevoError, match=r"2 of 6 test images are exact copies .*\(e\.g\. test image 2, test image 5"
    ):
        tensors.__wrapped__(str(path), val_size=4)
    assert len(tensors.__wrapped__(str(path), val_size=4, duplicates="drop").test_x) == 4
    assert len(tensors.__wrapped__(str(path), val_size=4, duplicates="keep").test_x) == 6
