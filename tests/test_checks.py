"""Every value a user sets is checked when the config is composed: out of range, the wrong kind or
meaningless is one line naming the key, the value and the allowed range (exit 2 through the CLI:
tests/test_hostile.py); every shipped config passes."""

from __future__ import annotations

import pytest

from lossevo.config.checks import RULES, check
from lossevo.errors import LossevoError

from .conftest import CONF, TINY, compose_config


def main_configs() -> list[str]:
    names = sorted(p.stem for p in CONF.glob("*.yaml"))
    assert {"evolve", "train", "validate", "correlate", "eliminate"} <= set(names)
    return names


@pytest.mark.parametrize("name", [n for n in main_configs() if n != "validate"])
def test_every_main_config_passes_as_shipped(name: str) -> None:
    """(validate's values are checked as the search's ``validate.*``, where it hands them.)"""
    check(compose_config(name))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("validate.alpha=2", "validate.alpha=2 is out of range: it must be a number in (0, 0.5)"),
        ("validate.alpha=nan", "validate.alpha=nan is not a number"),
        ("validate.alpha=0", "validate.alpha=0 is out of range"),
        ("validate.top_k=0", "validate.top_k=0 is out of range: it must be a whole number >= 1"),
        ("validate.top_k=-1", "validate.top_k=-1 is out of range"),
        ("validate.runs=-1", "validate.runs=-1 is out of range: it must be a whole number >= 0"),
        ("validate.steps=0", "validate.steps=0 is out of range"),
        ("validate.steps=[900,0]", "validate.steps=[900, 0] is out of range"),
        ("augment=cutout", None),
        ("augment=cutout augment.cutout=-4", "augment.cutout=-4 is out of range"),
        ("trainer.threads=0", "trainer.threads=0 is out of range"),
        ("driver.retries=-1", "driver.retries=-1 is out of range: it must be a whole number >= 0"),
        ("surrogate.steps=-5", "surrogate.steps=-5 is out of range: it must be a whole number >= 1"),
        ("search.initial_population=abc", "search.initial_population='abc' is not a number"),
        ("seed=-1", "seed=-1 is out of range: it must be a whole number in [0, 4294967295]"),
        ("seed=1.5", "seed=1.5 is not a whole number"),
        ("dataset.val_size=1.5", "dataset.val_size=1.5 is out of range: it must be a fraction in (0, 1)"),
        ("executor=local executor.workers=0", "executor.workers=0 is out of range"),
        ("+dataset.train_size=5", None),
        ("+dataset.train_size=-5", "dataset.train_size=-5 is out of range"),
        ("loss.label_smoothing=1.5", "loss.label_smoothing=1.5 is out of range"),
        ("search.fidelity.rungs=[100,-1]", "search.fidelity.rungs=[100, -1] is out of range"),
        ("search.fidelity.eta=1", "search.fidelity.eta=1 is out of range"),
    ],
)
def test_a_value_out_of_range_is_refused_by_name(override: str, message: str | None) -> None:
    cfg = compose_config("evolve", [*TINY, *override.split()])
    if message is None:  # the same key, a sensible value: accepted
        check(cfg)
        return
    with pytest.raises(LossevoError) as err:
        check(cfg)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_every_rule_names_a_key_some_config_has() -> None:
    """A rule for a key no config holds guards nothing (a renamed key would slip past)."""
    from omegaconf import OmegaConf

    configs = [compose_config(name) for name in main_configs() if name != "validate"]
    groups = [
        "augment=all",
        "augment=randaug",
        "augment=mixup",
        "executor=local",
        "search=glo",
        "search=taylorglo",
        "search=gp",
        "search=random",
        "dataset=caltech101",
        "dataset=image_folder dataset.root=x",
    ]
    extra = [compose_config("evolve", group.split()) for group in groups]
    optional = {
        "data_seed",
        "dataset.train_size",
        "dataset.num_classes",
        "dataset.test_size",
        "search.classes",
    }
    found = {
        rule.key
        for rule in RULES
        for cfg in [*configs, *extra]
        if OmegaConf.select(cfg, rule.key, default="<absent>") != "<absent>"
    }
    missing = {rule.key for rule in RULES} - found - optional
    assert not missing, missing
