"""Building objects from config nodes (Hydra's ``instantiate``), with user mistakes turned into one
clear error naming the config node."""

from __future__ import annotations

import re
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import MissingMandatoryValue

from lossevo.errors import LossevoError

_UNEXPECTED = re.compile(r"got an unexpected keyword argument '(\w+)'")


def build(node: Any, where: str, **kwargs: Any) -> Any:
    """``instantiate(node, **kwargs)``; an unknown option, a bad value or a LossevoError raised
    inside becomes one :class:`LossevoError` naming the config node ``where``."""
    try:
        return instantiate(node, _convert_="all", **kwargs)
    except LossevoError:
        raise
    except Exception as err:
        cause: BaseException = err
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, LossevoError):
            raise cause from None
        if isinstance(cause, MissingMandatoryValue):  # a ??? the user has to fill in
            key = str(getattr(cause, "full_key", "") or str(cause).split(": ")[-1].splitlines()[0])
            key = key if key.startswith(f"{where}.") else f"{where}.{key}"
            raise LossevoError(f"{key} is not set: add {key}=... to the command line") from None
        unknown = _UNEXPECTED.search(str(cause)) if isinstance(cause, TypeError) else None
        if unknown is not None:  # +dataset.train_size=5 on a loader that has no such option
            target = str(node.get("_target_", where)) if hasattr(node, "get") else where
            raise LossevoError(
                f"{where}.{unknown.group(1)} is not an option of {where} ({target}): remove it, or pick a "
                f"{where} config that has it (`--cfg job` shows the composed config)"
            ) from None
        if isinstance(err, InstantiationException) and cause is err:
            message = str(err).splitlines()[0]
        else:
            message = f"{type(cause).__name__}: {cause}"
        raise LossevoError(f"bad `{where}` config: {message}") from None
