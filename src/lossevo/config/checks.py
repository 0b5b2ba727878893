"""The allowed values of the keys a user sets, checked once when a command's config is composed.

One table, :data:`RULES`: a key, the kind of value it takes and its range. :func:`check` looks up
every key the config has and refuses the first value out of range with one line naming the key,
the value and what it may be (``surrogate.steps=-5: must be a whole number >= 1``), before
anything is built, trained or recorded. Keys a config does not have are skipped (``search.*``
keys belong to one strategy; ``dataset.val_size`` to loaders that take it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from lossevo.errors import LossevoError

_ABSENT = object()


@dataclass(frozen=True)
class Rule:
    """``key`` takes a whole number (``integer``) or any number in ``[low, high]`` (an open end
    when ``open_low``/``open_high``); ``null`` when ``nullable``; ``words`` are other allowed
    values (``auto``); ``fraction_or_count``: a fraction in (0, 1) or a whole count >= 1;
    ``listed``: a value or a list of them."""

    key: str
    integer: bool = True
    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    nullable: bool = False
    words: tuple[str, ...] = ()
    fraction_or_count: bool = False
    listed: bool = False

    def allowed(self) -> str:
        if self.fraction_or_count:
            text = "a fraction in (0, 1) or a whole count >= 1"
        else:
            kind = "a whole number" if self.integer else "a number"
            bounds = []
            if self.low is not None:
                bounds.append(f"{'>' if self.open_low else '>='} {_show(self.low)}")
            if self.high is not None:
                bounds.append(f"{'<' if self.open_high else '<='} {_show(self.high)}")
            text = f"{kind} {' and '.join(bounds)}".strip()
            if self.low is not None and self.high is not None:
                left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
                text = f"{kind} in {left}{_show(self.low)}, {_show(self.high)}{right}"
        extras = [*(repr(w) for w in self.words), *(["null"] if self.nullable else [])]
        text += f" (or {' or '.join(extras)})" if extras else ""
        return f"{text}, or a list of them" if self.listed else text

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, or None."""
        if value is None:
            return None if self.nullable else "it is not set"
        if isinstance(value, str) and value in self.words:
            return None
        if self.listed and isinstance(value, (list, tuple, ListConfig)):
            values = list(value)
            return "an empty list" if not values else next(filter(None, map(self._one, values)), None)
        return self._one(value)

    def _one(self, value: Any) -> str | None:
        number = _number(value)
        if number is None:
            return "not a number"
        if self.fraction_or_count:
            ok = 0 < number < 1 or (number >= 1 and float(number).is_integer())
            return None if ok else "out of range"
        if self.integer and not float(number).is_integer():
            return "not a whole number"
        below = self.low is not None and (number <= self.low if self.open_low else number < self.low)
        above = self.high is not None and (number >= self.high if self.open_high else number > self.high)
        return "out of range" if below or above else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _show(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e15 else f"{x:g}"


def _count(key: str, low: int = 1, nullable: bool = False, words: tuple[str, ...] = ()) -> Rule:
    return Rule(key, low=low, nullable=nullable, words=words)


def _unit(key: str) -> Rule:
    return Rule(key, integer=False, low=0, high=1)


RULES: tuple[Rule, ...] = (
    Rule("seed", low=0, high=2**32 - 1),  # Lightning seeds every RNG with it
    Rule("data_seed", low=0, high=2**32 - 1, nullable=True),
    _count("seeds"),
    _count("top_k"),
    # the recipe
    _count("surrogate.steps"),
    _count("surrogate.batch_size"),
    _count("surrogate.val_every"),
    _count("surrogate.val_batch_size"),
    _count("surrogate.train_acc_window"),
    _count("surrogate.check_every"),
    _count("surrogate.augment_chunk"),
    _count("surrogate.population", words=("auto",)),
    _count("surrogate.precheck.step", nullable=True),
    _count("surrogate.early_stop.step", nullable=True),
    _unit("surrogate.precheck.min_train_acc"),
    _unit("surrogate.early_stop.min_train_acc"),
    _count("trainer.threads", nullable=True),
    _count("trainer.devices"),
    # the search (after the recipe: its rungs default to surrogate.steps)
    _count("search.budget"),
    _count("search.initial_population"),
    _count("search.population_size"),
    _count("search.population", words=("auto",)),  # auto: the method's published size
    _count("search.tournament_size"),
    _count("search.max_mutation_tries"),
    _count("search.max_redos"),
    _count("search.max_tries"),
    _count("search.elites", low=0),
    _count("search.gp_generations", low=0),
    _count("search.classes", nullable=True),
    *(_unit(f"search.{p}") for p in ("crossover", "subtree_mutation", "one_point_mutation")),
    *(_unit(f"search.{p}") for p in ("archive_store", "archive_crossover")),
    Rule("search.sigma", integer=False, low=0, open_low=True),
    Rule("search.cma_sigma", integer=False, low=0, open_low=True),
    _count("search.cma_population", nullable=True),
    Rule("search.fidelity.eta", integer=False, low=1, open_low=True),
    Rule("search.fidelity.rungs", low=1, nullable=True, listed=True),
    Rule("search.fidelity.runs", low=1, nullable=True, listed=True),
    _count("objective.runs"),
    # data and augmentation
    Rule("dataset.val_size", fraction_or_count=True),
    Rule("dataset.test_size", fraction_or_count=True),
    _count("dataset.train_size", nullable=True),
    _count("dataset.image_size", nullable=True),
    _count("dataset.crop_padding", low=0, nullable=True),
    _count("dataset.num_classes", low=2, nullable=True),
    _count("dataset.split_seed", low=0),
    _count("augment.pad", low=0, nullable=True),
    _count("augment.cutout", nullable=True),
    Rule("augment.mixup", integer=False, low=0, open_low=True, nullable=True),
    Rule("augment.cutmix", integer=False, low=0, open_low=True, nullable=True),
    _count("augment.randaug.n", low=0),
    Rule("augment.randaug.m", integer=False, low=0, high=30),
    _count("augment.image_size", nullable=True),
    # where it runs, and the verdict
    _count("executor.workers", words=("auto",)),
    _count("executor.threads", nullable=True),
    _count("driver.retries", low=0),
    _count("driver.reference_runs"),
    _count("validate.runs", low=0, nullable=True, words=("auto",)),
    Rule("validate.resolution", integer=False, low=0, open_low=True),
    Rule("validate.spread", integer=False, low=0, open_low=True),
    _count("validate.max_runs", low=2),
    Rule("validate.tune_lr", integer=False, low=0, open_low=True, listed=True),
    _count("validate.tune_runs"),
    _count("validate.top_k", nullable=True),
    Rule("validate.steps", low=1, nullable=True, listed=True),
    Rule("validate.alpha", integer=False, low=0, high=0.5, open_low=True, open_high=True),
    _count("validate.seed", low=0, nullable=True),
    Rule("loss.label_smoothing", integer=False, low=0, high=1, nullable=True),
)


def check(cfg: DictConfig, rules: Iterable[Rule] = RULES) -> None:
    """Refuse the first value of ``cfg`` that its rule does not allow (one line: key, value, range)."""
    for rule in rules:
        try:
            value = OmegaConf.select(cfg, rule.key, default=_ABSENT, throw_on_missing=True)
        except OmegaConfBaseException:  # unset (???) or resolved only where it runs (${hydra:...})
            continue
        if value is _ABSENT or isinstance(value, DictConfig):
            continue
        if isinstance(value, ListConfig):
            value = OmegaConf.to_container(value, resolve=True)
        why = rule.problem(value)
        if why is not None:
            if value is None:  # "search.population=None is it is not set" read badly
                raise LossevoError(f"{rule.key} is null (not set): it must be {rule.allowed()}")
            raise LossevoError(f"{rule.key}={value!r} is {why}: it must be {rule.allowed()}")
