"""The augmentation techniques of docs/methods.md §4, batched: what each does to images and targets."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from lossevo.data.augment import (
    RANDAUG_OPS,
    AugmentRNG,
    Pipeline,
    _equalize,
    cutmix,
    cutout,
    mixup,
    rand_augment,
    set_dropout,
)
from lossevo.errors import LossevoError

from .conftest import compose_config

X = torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(0))
Y = torch.randint(0, 10, (64,), generator=torch.Generator().manual_seed(1))


def test_cutout_erases_one_square_per_image() -> None:
    out = cutout(torch.ones(200, 1, 16, 16), 8, AugmentRNG(0))
    erased = (out == 0).sum(dim=(1, 2, 3))
    assert erased.max() == 64 and erased.min() >= 16  # a full 8x8 square, or clipped at a border
    assert (erased == 64).float().mean() > 0.2
    rows = (out[:, 0] == 0).any(dim=2).sum(1)
    assert rows.max() <= 8


def test_mixup_mixes_images_and_targets_alike() -> None:
    x, y = mixup(X, Y, 1.0, 10, AugmentRNG(3))
    replay = AugmentRNG(3)  # the same draws: λ first, then the pairing
    lam = replay.beta(1.0)
    perm = torch.randperm(64, generator=replay.tensor)
    onehot = torch.nn.functional.one_hot(Y, 10).float()
    assert 0 < lam < 1
    assert torch.allclose(x, lam * X + (1 - lam) * X[perm])
    assert torch.allclose(y, lam * onehot + (1 - lam) * onehot[perm])
    assert y.shape == (64, 10) and torch.allclose(y.sum(1), torch.ones(64))


def test_mixup_lambda_follows_beta() -> None:
    rng = AugmentRNG(4)
    draws = torch.tensor([rng.beta(0.2) for _ in range(4000)])
    assert float(draws.min()) >= 0.0 and float(draws.max()) <= 1.0
    assert float(draws.mean()) == pytest.approx(0.5, abs=0.03)
    assert float(draws.var()) == pytest.approx(0.25 * 1 / (2 * 0.2 + 1), abs=0.02)  # Beta(a, a) variance


def test_cutmix_targets_match_the_pasted_area() -> None:
    x, y = cutmix(X, Y, 1.0, 10, AugmentRNG(5))
    changed = (x != X).any(dim=1)  # pixels taken from another image
    share = changed.float().mean(dim=(1, 2))
    onehot = torch.nn.functional.one_hot(Y, 10).float()
    own = (y * onehot).sum(1)
    different = own < 1  # images paired with one of another class
    assert torch.allclose(own[different], 1 - share[different], atol=0.02) or not different.any()
    assert torch.allclose(y.sum(1), torch.ones(64))


def test_rand_augment_ops_stay_in_range_and_vary_per_image() -> None:
    out = rand_augment(X, 2, 9, AugmentRNG(6))
    assert out.shape == X.shape and out.min() >= 0 and out.max() <= 1
    changed = (out - X).abs().flatten(1).amax(1) > 1e-4
    assert 0.5 < changed.float().mean() <= 1.0
    grey = torch.rand(32, 1, 28, 28)
    assert rand_augment(grey, 3, 15, AugmentRNG(7)).shape == grey.shape  # 1 channel and m > 10 work
    assert torch.equal(rand_augment(X, 2, 9, AugmentRNG(6)), out)


def test_rand_augment_at_magnitude_zero_changes_only_magnitude_free_ops() -> None:
    """At magnitude 0 rotate/shear/translate/colour ops are identities; autocontrast and
    equalize (which have no magnitude) still act, solarize's threshold is 1."""
    x = torch.rand(64, 3, 8, 8) * 0.5 + 0.25
    out = rand_augment(x, 1, 0, AugmentRNG(8))
    op = torch.randint(0, 14, (64,), generator=AugmentRNG(8).tensor)  # replay the op draws
    free = torch.isin(op, torch.tensor([RANDAUG_OPS.index("autocontrast"), RANDAUG_OPS.index("equalize")]))
    posterize = op == RANDAUG_OPS.index("posterize")  # 8 bits: rounds to the 256 levels of a byte
    rest = ~free & ~posterize
    assert free.any() and rest.any()
    assert torch.allclose(out[rest], x[rest], atol=1e-5)
    assert torch.allclose(out[posterize], x[posterize], atol=1 / 255)
    assert not torch.allclose(out[free], x[free], atol=1e-3)


def test_equalize_flattens_the_histogram() -> None:
    x = (torch.rand(4, 1, 32, 32) * 0.3).round(decimals=2)  # a narrow range
    out = _equalize(x)
    assert out.max() == pytest.approx(1.0) and out.min() == pytest.approx(0.0)
    assert len(RANDAUG_OPS) == 14


def test_pipeline_composes_the_five_techniques_from_configs() -> None:
    techniques = dict(base=False, cutout=False, mixup=True, randaug=False, all=True, cutmix=True)
    for name, mixes in techniques.items():
        cfg = compose_config("evolve", ["dataset=digits", f"augment={name}"])
        pipeline = instantiate(cfg.augment, _convert_="all", num_classes=10)
        x, y = pipeline(torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,)), AugmentRNG(0))
        assert x.shape == (16, 1, 8, 8) and pipeline.name == name
        assert y.is_floating_point() == mixes, name


def test_progressive_phases_switch_by_step() -> None:
    phases = {"phase_steps": 10, "image_size": [8, 12], "dropout": [0.1, 0.3], "magnitude": [5, 15]}
    p = Pipeline(pad=0, randaug={"n": 1, "m": 5}, progressive=phases)
    assert p.size_at(0) == 8 and p.size_at(9) == 8 and p.size_at(10) == 12 and p.size_at(99) == 12
    assert p.dropout_at(3) == 0.1 and p.dropout_at(15) == 0.3
    x, _ = p(torch.rand(4, 3, 16, 16), torch.zeros(4, dtype=torch.long), AugmentRNG(0), step=12)
    assert x.shape == (4, 3, 12, 12)
    with pytest.raises(LossevoError, match="equally long lists"):
        Pipeline(progressive={"phase_steps": 10, "image_size": [8, 12], "dropout": [0.1]})


def test_set_dropout() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1))
    set_dropout(model, 0.4)
    assert model[1].p == 0.4
