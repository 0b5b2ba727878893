"""The typed settings of lossevo: schemas of the config nodes read as plain settings (not
instantiated), and what a search reads of its config, parsed once.

``validated(node, Schema, "surrogate")`` checks a composed node against its dataclass, so a typo in
a YAML file fails loudly with the key's name instead of being ignored. :class:`SearchSettings` is
everything the search driver takes from an ``evolve`` config, checked before a run folder is
touched.
"""

from __future__ import annotations

import shlex
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


@dataclass(frozen=True)
class SearchSettings:
    """What the search driver reads of an ``evolve`` config, parsed and checked once."""

    budget: int  # search.budget: candidates, the initial population included
    seed: int  # one seed reproduces the search
    top_k: int  # losses validated (unless validate.top_k), written out and printed
    surrogate_steps: int  # surrogate.steps: the budget of a single-rung search
    group: int  # tasks handed to one evaluation (surrogate.population)
    prescreen: list[str]  # search.prescreen: overrides of the initial population's trainings
    reference_name: str  # loss.name: the reference loss
    # Label smoothing is a training setting, as in the authors' code: the user's
    # loss.label_smoothing applies to every candidate as to the reference.
    label_smoothing: float
    driver: DriverSettings
    fidelity: FidelitySettings
    validate: ValidateSettings

    @classmethod
    def from_config(cls, cfg: DictConfig) -> SearchSettings:
        prescreen = cfg.search.get("prescreen") or []
        return cls(
            budget=positive_integer(cfg.search.budget, "search.budget"),
            seed=integer(cfg.seed, "seed"),
            top_k=integer(cfg.get("top_k", 3), "top_k"),
            surrogate_steps=integer(cfg.surrogate.steps, "surrogate.steps"),
            group=group_size(cfg),
            prescreen=shlex.split(prescreen) if isinstance(prescreen, str) else [str(o) for o in prescreen],
            reference_name=str(cfg.loss.get("name") or "reference"),
            label_smoothing=float(cfg.loss.get("label_smoothing") or 0.0),
            driver=validated(cfg.get("driver"), DriverSettings, "driver"),
            fidelity=validated(cfg.search.get("fidelity"), FidelitySettings, "search.fidelity"),
            validate=validated(cfg.get("validate"), ValidateSettings, "validate"),
        )


def integer(value: Any, key: str) -> int:
    """An integer setting; a fraction or a word is refused rather than truncated."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LossevoError(f"{key} must be an integer, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise LossevoError(f"{key} must be an integer, got {value!r}") from None
    if not number.is_integer():
        raise LossevoError(f"{key} must be an integer, got {value!r}")
    return int(number)


def positive_integer(value: Any, key: str) -> int:
    number = integer(value, key)
    if number < 1:
        raise LossevoError(f"{key} must be >= 1, got {number}")
    return number


def group_size(cfg: Any) -> int:
    """How many tasks a caller hands to one evaluation: ``surrogate.population`` (``auto``: 1
    without a GPU here, else up to 32, which the worker splits into passes of its measured size)."""
    value = (cfg.get("surrogate") or {}).get("population", 1)
    if value == "auto":
        import torch

        return 32 if torch.cuda.is_available() else 1
    try:
        size = int(value)
    except (TypeError, ValueError):
        size = 0
    if size < 1:
        raise LossevoError(f"surrogate.population={value!r}: use a whole number >= 1 or auto")
    return size
