"""Building the loss a config node names, with a genome kept as data.

A genome node (``_target_: lossevo.losses.genome_loss``: a candidate, ``best_k.yaml``,
``loss=genome``) holds a genome read from a journal or a loss file. It is built here from the
node's data, never by Hydra's recursive ``instantiate``: nothing in a genome is instantiated or
interpolated, and :func:`~lossevo.genome.genome_from_dict` refuses anything but plain names and
numbers (genome/plain.py). Any other node is a config the user chose (conf/loss/ or a
``--config-dir``) and Hydra builds it as usual.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from lossevo.errors import GenomeError, LossevoError
from lossevo.genome import Genome, genome_from_dict
from lossevo.genome.files import LOSS_KEYS, LOSS_NAME, LOSS_TARGET
from lossevo.losses.base import GenomeLoss

_REDUCTIONS = ("mean", "sum", "none")


def genome_loss_config(name: str, genome: Genome, label_smoothing: float = 0.0) -> dict[str, Any]:
    """The config node of a genome's loss (what ``loss=`` holds for a candidate or ``best_k.yaml``).
    It takes a parsed :class:`Genome`, so only data :func:`genome_from_dict` accepted reaches a
    config (never a journal's raw dict)."""
    if not LOSS_NAME.fullmatch(name):
        raise LossevoError(f"a loss name is letters, digits, '_', '.' and '-', got {name[:60]!r}")
    node: dict[str, Any] = {"_target_": LOSS_TARGET, "name": name, "genome": genome.to_dict()}
    if label_smoothing:
        node["label_smoothing"] = float(label_smoothing)
    return node


def build_loss(node: Any, where: str = "loss") -> Any:
    """The loss module ``node`` configures; one :class:`LossevoError` naming ``where`` if it cannot."""
    from lossevo.config import build

    if _target(node) == LOSS_TARGET:
        return _genome_loss(node, where)
    return build(node, where)


def is_genome_node(node: Any) -> bool:
    """Whether ``node`` is a genome loss node (built from data by :func:`build_loss`)."""
    return _target(node) == LOSS_TARGET


def _target(node: Any) -> Any:
    if isinstance(node, DictConfig):
        return OmegaConf.to_container(node, resolve=False).get("_target_")  # type: ignore[union-attr]
    return node.get("_target_") if isinstance(node, dict) else None


def _genome_loss(node: Any, where: str) -> GenomeLoss:
    raw: dict[str, Any] = (
        OmegaConf.to_container(node, resolve=False) if isinstance(node, DictConfig) else dict(node)  # type: ignore[assignment]
    )
    unknown = sorted(str(k) for k in raw if k not in LOSS_KEYS)
    if unknown:
        raise LossevoError(
            f"{where}.{unknown[0]} is not an option of a genome loss (it takes "
            f"{', '.join(sorted(LOSS_KEYS - {'_target_'}))}): remove it"
        )
    if raw.get("genome") in (None, "???"):
        raise LossevoError(
            f"{where}.genome is not set: add {where}.genome={{space: graph, ...}} or use "
            f"{where}=file {where}.path=<genome file>"
        )
    name = raw.get("name", "genome")
    if not isinstance(name, str) or not LOSS_NAME.fullmatch(name):
        raise LossevoError(f"{where}.name must be letters, digits, '_', '.' and '-', got {str(name)[:60]!r}")
    # A user's config may set these two knobs by interpolation (they are numbers and words, not data).
    smoothing = node.get("label_smoothing", 0.0)
    reduction = node.get("reduction", "mean")
    if isinstance(smoothing, bool) or not isinstance(smoothing, int | float) or not 0 <= smoothing < 1:
        raise LossevoError(f"{where}.label_smoothing must be a number in [0, 1), got {str(smoothing)[:60]!r}")
    if reduction not in _REDUCTIONS:
        raise LossevoError(
            f"{where}.reduction must be one of {', '.join(_REDUCTIONS)}, got {str(reduction)[:60]!r}"
        )
    try:
        genome = genome_from_dict(raw["genome"])
    except GenomeError as err:
        raise GenomeError(f"{where}.genome: {err}") from None
    return GenomeLoss(genome, reduction=reduction, name=name, label_smoothing=float(smoothing))


def check_stored_loss(node: Any) -> None:
    """Raise :class:`GenomeError` unless ``node``, a loss node read back from a study journal, is
    one of the two kinds a study writes: a registered loss by name, or a genome node."""
    from lossevo.losses.registry import available_losses

    if not isinstance(node, dict):
        raise GenomeError(f"a stored loss must be a mapping, got {type(node).__name__}")
    if node.get("_target_") == "lossevo.losses.get_loss" and set(node) == {"_target_", "name"}:
        if node["name"] in available_losses():
            return
        raise GenomeError(f"{str(node['name'])[:60]!r} is not a registered loss (`lossevo list`)")
    if node.get("_target_") != LOSS_TARGET or not set(node) <= LOSS_KEYS:
        raise GenomeError(
            f"a stored loss is a registered loss by name or a genome ({LOSS_TARGET}), got _target_ "
            f"{str(node.get('_target_'))[:60]!r} with keys {_some(sorted(str(k)[:40] for k in node))}"
        )
    genome_from_dict(node.get("genome"), validate=False)


def _some(names: list[str], shown: int = 6) -> str:
    """The first ``shown`` names whole, and how many more (a message is never cut mid-word)."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")
