"""The typed settings of lossevo: schemas of the config nodes read as plain settings (not
instantiated), and what a search reads of its config, parsed once.

``validated(node, Schema, "surrogate")`` checks a composed node against its dataclass, so a typo in
a YAML file fails loudly with the key's name instead of being ignored. :class:`SearchSettings` is
everything the search driver takes from an ``evolve`` config, checked before a run folder is
touched.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from omegaconf import DictConfig, MissingMandatoryValue, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lossevo.config.compose import resolved
from lossevo.errors import LossevoError

T = TypeVar("T")


# The schemas carry types and meanings; every value, default included, comes from the YAML in
# conf/ (the one source of defaults: a schema field has no default, so a key missing from a
# config is an error naming it, never a second default that could disagree with the YAML).


@dataclass
class RuleSettings:
    """An early-stopping rule on the running train accuracy; ``step: null`` disables it."""

    step: int | None
    min_train_acc: float


@dataclass
class SurrogateSettings:
    """One training recipe: the cheap surrogate of a search, or any recipe for ``train.py``
    (values: conf/surrogate/default.yaml)."""

    steps: int
    batch_size: int
    optimizer: Any  # a ``_partial_`` optimiser config, e.g. torch.optim.Adam
    schedule: Any  # a ``_partial_`` schedule config (lossevo.training.schedules); null: constant
    val_every: int
    val_batch_size: int
    # Train accuracy for the rules is the mean over the last ``train_acc_window`` steps.
    train_acc_window: int
    # Reject the candidate (it fails) when train accuracy is below the threshold at ``step``
    # (the pre-check of docs/methods.md §3).
    precheck: RuleSettings
    # Stop training (the candidate keeps its best validation accuracy) when train accuracy is
    # below the threshold at ``step`` (docs/methods.md §3).
    early_stop: RuleSettings
    # How often the non-finite-loss flag is read back (a device sync on GPUs).
    check_every: int
    # Batches augmented together (per-image ops); amortises the fixed cost of each tensor op.
    augment_chunk: int
    # Candidates trained together in one pass (lossevo.training.population): an int, or "auto"
    # (1 on a CPU, a measured size on a GPU).
    population: Any


@dataclass
class TrainerSettings:
    """Where and how Lightning runs the training (values: conf/trainer/)."""

    accelerator: str
    devices: int
    precision: str
    # torch.set_num_threads on CPU; null leaves torch's default.
    threads: int | None
    # cuDNN autotuning of convolutions (Lightning's ``benchmark``); null leaves cuDNN's default.
    benchmark: bool | None
    # Images and conv weights in channels-last layout: faster convolutions on GPUs (~1.5x ResNet9
    # on an H100 with autotuning) and on CPUs (1.08-1.17x fwd+bwd on 2 cores, oneDNN).
    channels_last: bool
    # Lightning's profiler (simple | advanced | pytorch); its report goes to the training's folder.
    profiler: str | None


@dataclass
class DriverSettings:
    """How the search driver treats broken evaluations and the reference loss (evolve.yaml)."""

    retries: int  # re-run an evaluation that broke (stop reason in retry_on) this many times
    retry_on: list[str]
    reference_runs: int  # the reference loss's trainings at rung 0 (its band in reports)


@dataclass
class ObjectiveSettings:
    """How a candidate's trainings become its fitness (lossevo.execution.objectives; evolve.yaml)."""

    settings: list[Any]  # override strings (or lists); []: the run's own
    runs: int  # trainings per setting (other seeds), averaged
    combine: str  # mean | wins


@dataclass
class FidelitySettings:
    """Multi-fidelity promotion (lossevo.search.fidelity): rungs of increasing training budget."""

    rungs: list[int] | None  # steps per rung; null: one rung at surrogate.steps
    eta: float  # promote the top 1/eta of a rung's results so far
    runs: list[int] | None  # trainings per rung (other seeds, averaged); null: 1 each


@dataclass
class ValidateSettings:
    """The verdict (lossevo.verdict): the finalists and the baselines retrained with fresh seeds,
    reported on test data (evolve.yaml's ``validate``)."""

    runs: Any  # trainings per loss and cell; auto: enough for ``resolution``; null: 8 GPU, 5 CPU; 0: none
    resolution: float  # points: the lead over every baseline runs=auto is planned to find at 80%
    spread: float  # points: the paired differences' standard deviation assumed when planning
    max_runs: int  # runs=auto's cap
    tune: bool | None  # tune on validation data before the test runs; null: with a GPU only
    tune_lr: list[float]  # multipliers of the setting's learning rate tried for every loss
    tune_coefficients: dict[str, list[float]]  # a baseline's loss key -> values tried (when it holds one)
    tune_runs: int  # trainings per grid point
    top_k: int | None  # finalists validated; null: top_k
    steps: Any  # their budget(s): a step count, a list of them, or null (the top rung's; x4 too on a GPU)
    settings: list[str]  # other settings (override strings) the finalists are checked on
    baselines: list[str]  # loss options a finalist must beat, each; ``reference``: the search's loss=
    alpha: float  # significance level (one-sided paired tests; Holm over the finalists)
    share: Any  # auto: a multirun's searches share seeds and baseline runs; false: never; or a folder
    seed: int | None  # the validation seeds' base; null: the search's seed (shared: 0)


def validated(node: DictConfig | dict | None, schema: type[T], where: str) -> T:
    """``node`` checked against ``schema``, as a dataclass instance; errors name ``where``."""
    base = OmegaConf.structured(schema)
    try:
        if isinstance(node, DictConfig):  # resolved in place: interpolations read the whole config
            node = resolved(node)
        merged = OmegaConf.merge(base, node or {})
        return cast(T, OmegaConf.to_object(merged))  # a structured config's object is its schema's instance
    except MissingMandatoryValue as err:
        key = f"{where}.{err.full_key}" if getattr(err, "full_key", "") else where
        raise LossevoError(
            f"{key} is not set: a {where} config needs it (see lossevo's conf/ for its default); "
            f"add {key}=..."
        ) from None
    except OmegaConfBaseException as err:
        message = str(err).splitlines()[0]
        full = str(getattr(err, "full_key", "") or "")
        if full and "is not a ListConfig" in message:  # validate.baselines=reference
            value = getattr(err, "value", None)
            raise LossevoError(
                f"{where}.{full}={value} is not a list: write {where}.{full}=[{value}]"
            ) from None
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
            top_k=integer(cfg.top_k, "top_k"),
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
