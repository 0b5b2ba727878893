"""Named losses and losses built from genomes.

>>> from lossevo.losses import get_loss
>>> criterion = get_loss("neuroloss1")          # drop-in for nn.CrossEntropyLoss()
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lossevo.genome import Genome, genome_from_dict, load_genome_file
from lossevo.losses import published as _published  # noqa: F401  (registers the losses)
from lossevo.losses.base import GenomeLoss, Loss
from lossevo.losses.nodes import build_loss, genome_loss_config
from lossevo.losses.registry import available_losses, get_loss, register_loss


def genome_loss(
    genome: Genome | dict[str, Any],
    name: str | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> GenomeLoss:
    """A loss from a genome or its plain-data form (as in ``<run>/conf/loss/best_1.yaml``)."""
    if not isinstance(genome, Genome):
        genome = genome_from_dict(_plain(genome))
    return GenomeLoss(genome, reduction=reduction, name=name, label_smoothing=label_smoothing)


def load_loss_file(path: str | Path, reduction: str = "mean", label_smoothing: float = 0.0) -> GenomeLoss:
    """A loss from a genome file (JSON or YAML), read as data (genome/files.py)."""
    return GenomeLoss(
        load_genome_file(path), reduction=reduction, name=Path(path).stem, label_smoothing=label_smoothing
    )


def _plain(data: Any) -> Any:
    """OmegaConf containers (from Hydra configs) to plain dicts/lists, not interpolated: a genome
    is data, and ``genome_from_dict`` refuses a ``${...}`` in it."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - omegaconf is a dependency
        return data
    if isinstance(data, (DictConfig, ListConfig)):
        return OmegaConf.to_container(data, resolve=False)
    return data


__all__ = [
    "GenomeLoss",
    "Loss",
    "available_losses",
    "build_loss",
    "genome_loss",
    "genome_loss_config",
    "get_loss",
    "load_loss_file",
    "register_loss",
]
