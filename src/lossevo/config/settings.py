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
    schedule: Any = None  # a ``_partial_`` schedule config (lossevo.training.schedules)
    val_every: int = 100
    val_batch_size: int = 1000
    # Train accuracy for the rules is the mean over the last ``train_acc_window`` steps.
    train_acc_window: int = 50
    # Reject the candidate (it fails) when train accuracy is below the threshold at ``step``
    # (the ConvNet pre-check of docs/methods.md §3: 37% after 800 steps).
    precheck: RuleSettings = field(default_factory=lambda: RuleSettings(800, 0.37))
    # Stop training (the candidate keeps its best validation accuracy) when train accuracy is
    # below the threshold at ``step`` (docs/methods.md §3: 25% after 3,000 steps).
    early_stop: RuleSettings = field(default_factory=lambda: RuleSettings(3000, 0.25))
    # How often the non-finite-loss flag is read back (a device sync on GPUs).
    check_every: int = 25
    # Batches augmented together (per-image ops); amortises the fixed cost of each tensor op.
    augment_chunk: int = 16
    # Candidates trained together in one pass (lossevo.training.population): an int, or "auto" (1 on a CPU, a
    # measured size on a GPU).
    population: Any = 1


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
    # Images and conv weights in channels-last layout: faster convolutions on GPUs (~1.5x ResNet9
    # on an H100 with autotuning) and on CPUs (1.08-1.17x fwd+bwd on 2 cores, oneDNN).
    channels_last: bool = True


@dataclass
class DriverSettings:
    """How the search driver treats broken evaluations and the reference loss."""

    retries: int = 1  # re-run an evaluation that broke (stop reason in retry_on) this many times
    retry_on: list[str] = field(default_factory=lambda: ["error", "worker"])
    reference_runs: int = 1  # the reference loss's trainings at rung 0 (its band in reports)


@dataclass
class ObjectiveSettings:
    """How a candidate's trainings become its fitness (lossevo.search.objectives)."""

    settings: list[Any] = field(default_factory=list)  # override strings (or lists); []: the run's own
    runs: int = 1  # trainings per setting (other seeds), averaged
    combine: str = "mean"  # mean | wins


@dataclass
class FidelitySettings:
    """Multi-fidelity promotion (lossevo.search.fidelity): rungs of increasing training budget."""

    rungs: list[int] | None = None  # steps per rung; null: one rung at surrogate.steps
    eta: float = 3.0  # promote the top 1/eta of a rung's results so far
    runs: list[int] | None = None  # trainings per rung (other seeds, averaged); null: 1 each


@dataclass
class ValidateSettings:
    """The verdict (lossevo.verdict): the finalists and the reference loss retrained with fresh seeds."""

    runs: int | None = None  # trainings per loss; null: 5 on a GPU, 3 on the CPU; 0: no verdict
    top_k: int | None = None  # finalists validated; null: top_k
    steps: int | None = None  # their budget; null: the top rung's
    alpha: float = 0.05  # significance level of the one-sided Welch test (Holm-adjusted over finalists)


def validated(node: DictConfig | dict | None, schema: type[T], where: str) -> T:
    """``node`` merged onto ``schema``'s defaults, as a dataclass instance; errors name ``where``."""
    base = OmegaConf.structured(schema)
    try:
        if isinstance(node, DictConfig):  # resolved in place: interpolations read the whole config
            node = OmegaConf.to_container(node, resolve=True)  # type: ignore[assignment]
        merged = OmegaConf.merge(base, node or {})
        return OmegaConf.to_object(merged)  # type: ignore[return-value]
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        raise LossevoError(f"bad `{where}` config: {message}") from None
