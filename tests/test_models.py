"""Models: parameter counts against docs/methods.md §9, forward shapes, checkpoints, paper experiments."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from lossevo.config import build
from lossevo.config.settings import SurrogateSettings, validated
from lossevo.data.augment import AugmentRNG
from lossevo.errors import LossevoError
from lossevo.models import WideResNet, count_parameters, load_checkpoint
from lossevo.search.driver import build_strategy
from lossevo.training.surrogate import MODEL_KEYS

from .conftest import CONF, compose_config


def model(choice: str, in_channels: int = 3, classes: int = 10, **overrides) -> torch.nn.Module:
    node = compose_config("train", [f"model={choice}"]).model
    node = OmegaConf.masked_copy(node, [k for k in node if k not in MODEL_KEYS])
    return build(OmegaConf.merge(node, overrides), "model", in_channels=in_channels, num_classes=classes)


@pytest.mark.parametrize(
    ("name", "expected", "tolerance"),
    [
        ("convnet", 14_000, 0.06),  # MH-NLE's "14,000"
        ("resnet9", 6_570_000, 0.005),  # Myrtle / DavidNet, docs/methods.md §9
        ("resnet9v2", 6_500_000, 0.02),  # MH-AUG's "6.5 million"
        ("resnet9v2_small", 30_000, 0.15),  # MH-NLE's "30,000"
        ("wrn28_10", 36_500_000, 0.005),  # docs/methods.md §9
        ("allcnn_c", 1_370_000, 0.01),
        ("efficientnetv2_s", 20_200_000, 0.005),  # docs/methods.md §9, timm efficientnetv2_s
    ],
)
def test_parameter_counts(name: str, expected: int, tolerance: float) -> None:
    assert count_parameters(model(name)) == pytest.approx(expected, rel=tolerance)


@pytest.mark.parametrize("name", ["convnet", "resnet9", "resnet9v2_small", "wrn16_8", "allcnn_c", "glo_cnn"])
def test_forward_on_small_images(name: str) -> None:
    net = model(name, in_channels=1 if name == "glo_cnn" else 3).eval()
    x = torch.rand(
        2, 1 if name == "glo_cnn" else 3, 28 if name == "glo_cnn" else 32, 28 if name == "glo_cnn" else 32
    )
    assert net(x).shape == (2, 10)


def test_wrn_depth_must_fit() -> None:
    with pytest.raises(LossevoError, match="6n \\+ 4"):
        WideResNet(3, 10, depth=27)


def test_timm_model_by_name_and_its_input_size() -> None:
    cfg = compose_config("train", ["model=inception_v3"])
    assert cfg.augment.image_size == 299  # the augment configs resize to what the model needs
    net = model("timm", name="resnet18", dropout=0.2)
    assert net.eval()(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    with pytest.raises(LossevoError, match="timm has no model 'resnet18x'"):
        model("timm", name="resnet18x")


def test_checkpoint_fine_tuning_keeps_matching_weights(tmp_path: Path) -> None:
    source = model("resnet9", classes=100)
    torch.save({"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}}, tmp_path / "w.ckpt")
    target = load_checkpoint(model("resnet9", classes=10), tmp_path / "w.ckpt")
    assert torch.equal(target.features[0][0].weight, source.features[0][0].weight)
    assert target.head.weight.shape == (10, 512)  # the head of another class count stays fresh
    assert not torch.equal(target.head.weight, source.head.weight[:10])
    with pytest.raises(LossevoError, match="does not exist"):
        load_checkpoint(target, tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(LossevoError, match="not a torch checkpoint"):
        load_checkpoint(target, tmp_path / "junk.pth")


EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
SEARCHES = {
    "morgan_hougen",
    "augmentation_paper",
    "glo_mnist",
    "taylorglo_cifar10",
    "ngl_cifar10",
    "ngl_fmnist",
    "ngl_wins",
}


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_builds(name: str) -> None:
    entry = "evolve" if name in SEARCHES else "train"
    extra = ["model.checkpoint=/weights.pth"] if name == "finetune_effnetv2" else []
    cfg = compose_config(entry, [f"experiment={name}", *extra])
    settings = validated(cfg.surrogate, SurrogateSettings, "surrogate")
    assert settings.steps >= 2000
    classes = 102 if cfg.dataset._target_.endswith("flowers102") else 10
    pipeline = build(cfg.augment, "augment", num_classes=classes)
    x, _ = pipeline(
        torch.rand(2, 3, 32, 32),
        torch.zeros(2, dtype=torch.long),
        AugmentRNG(0),
    )
    assert x.shape[0] == 2
    if settings.schedule is not None:
        factor = build(settings.schedule, "surrogate.schedule")(settings.steps)
        assert factor(0) > 0 and factor(settings.steps) == pytest.approx(0.0, abs=1e-9)
    if entry == "evolve":  # the search strategy builds on its space
        assert build_strategy(cfg).ask() is not None
