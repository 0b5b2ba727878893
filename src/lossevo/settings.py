"""Schemas of the config nodes that are read as plain settings (not instantiated).

``validated(node, Schema, "surrogate")`` checks a composed node against its dataclass, so a typo in
a YAML file fails loudly with the key's name instead of being ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lossevo.errors import LossevoError

T = TypeVar("T")


@dataclass
class RuleSettings:
    """An early-stopping rule on the running train accuracy; ``step: null`` disables it."""

    step: int | None = None
    min_train_acc: float = 0.0


@dataclass
class SurrogateSettings:
    """One training recipe: the cheap surrogate of a search, or any recipe for ``train.py``."""

    steps: int = 300
    batch_size: int = 64
    optimizer: Any = None  # a ``_partial_`` optimiser config, e.g. torch.optim.Adam
    schedule: Any = None  # a ``_partial_`` schedule config (lossevo.schedules)
    val_every: int = 100
    val_batch_size: int = 1000
    # Train accuracy for the rules is the mean over the last ``train_acc_window`` steps.
    train_acc_window: int = 50
    # Reject the candidate (it fails) when train accuracy is below the threshold at ``step``
    # (the ConvNet pre-check of REFERENCE §3: 37% after 800 steps).
    precheck: RuleSettings = field(default_factory=lambda: RuleSettings(800, 0.37))
    # Stop training (the candidate keeps its best validation accuracy) when train accuracy is
    # below the threshold at ``step`` (REFERENCE §3: 25% after 3,000 steps).
    early_stop: RuleSettings = field(default_factory=lambda: RuleSettings(3000, 0.25))
    # How often the non-finite-loss flag is read back (a device sync on GPUs).
    check_every: int = 25
    # Batches augmented together (per-image ops); amortises the fixed cost of each tensor op.
    augment_chunk: int = 16


@dataclass
class TrainerSettings:
    """Where and how Lightning runs the training."""

    accelerator: str = "auto"
    devices: int = 1
    precision: str = "32-true"
    # torch.set_num_threads on CPU; null leaves torch's default.
    threads: int | None = None
    # cuDNN autotuning of convolutions (Lightning's ``benchmark``); null leaves cuDNN's default.
    benchmark: bool | None = None
    # Images and conv weights in channels-last layout (faster convolutions on recent GPUs).
    channels_last: bool = False


def validated(node: DictConfig | dict | None, schema: type[T], where: str) -> T:
    """``node`` merged onto ``schema``'s defaults, as a dataclass instance; errors name ``where``."""
    base = OmegaConf.structured(schema)
    try:
        merged = OmegaConf.merge(base, node or {})
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        raise LossevoError(f"bad `{where}` config: {message}") from None
