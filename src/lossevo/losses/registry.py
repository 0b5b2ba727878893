"""The loss registry: ``get_loss(name, **kwargs)`` builds any named loss."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from typing import Any

from lossevo.errors import LossevoError
from lossevo.losses.base import Loss

_REGISTRY: dict[str, Callable[..., Loss]] = {}


def register_loss(name: str) -> Callable[[Callable[..., Loss]], Callable[..., Loss]]:
    """Register a loss factory under ``name`` (decorator)."""

    def wrap(factory: Callable[..., Loss]) -> Callable[..., Loss]:
        if name in _REGISTRY:
            raise ValueError(f"loss {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return wrap


def available_losses() -> list[str]:
    return sorted(_REGISTRY)


def get_loss(name: str, label_smoothing: float = 0.0, **kwargs: Any) -> Loss:
    """Build the named loss; unknown names and options give one clear error. Every loss takes
    ``label_smoothing`` (the base class applies it to the targets)."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise LossevoError(f"unknown loss {name!r}.{hint} Available: {', '.join(available_losses())}")
    factory = _REGISTRY[name]
    params = inspect.signature(factory).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        options = ", ".join([*params, "label_smoothing"])
        raise LossevoError(
            f"loss {name!r} has no option {', '.join(map(repr, unknown))} (options: {options})"
        )
    for key, value in kwargs.items():  # gamma=abc would reach the exported source as a string
        default = params[key].default
        number = isinstance(default, int | float) and not isinstance(default, bool)
        if number and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise LossevoError(f"loss {name!r}: {key} must be a number (default {default}), got {value!r}")
    try:
        loss = factory(**kwargs)
    except (TypeError, ValueError) as err:  # e.g. params=[a,b]: words where numbers belong
        given = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
        raise LossevoError(f"loss {name!r} cannot be built from {given}: {err}") from None
    loss.label_smoothing = label_smoothing
    return loss
