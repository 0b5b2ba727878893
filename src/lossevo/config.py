"""Building objects from config nodes, with user mistakes turned into one clear error."""

from __future__ import annotations

import hashlib
import importlib.resources
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import InstantiationException
from hydra.experimental.callback import Callback
from hydra.utils import instantiate
from omegaconf import DictConfig, MissingMandatoryValue, OmegaConf

from lossevo.errors import LossevoError

# The project's configs (conf/ in a clone, lossevo/conf once installed), for composing outside an
# entry script (tests, notebooks).
CONF_DIR = Path(str(importlib.resources.files("lossevo.conf")))


def short_dirname(overrides: str, limit: int = 100) -> str:
    """A folder name for a multirun job from its overrides: as is when short, else a readable
    prefix and a hash of the whole (file systems refuse names over 255 bytes)."""
    name = overrides.replace("/", "_") or "default"
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:10]
    return f"{name[: limit - 11]}-{digest}"


def times(value: int, factor: float) -> int:
    """``${lossevo_times:${surrogate.steps},4}``: a step count scaled, for rung ladders in configs."""
    return round(float(value) * float(factor))


if not OmegaConf.has_resolver("lossevo_dirname"):
    OmegaConf.register_new_resolver("lossevo_dirname", short_dirname)
if not OmegaConf.has_resolver("lossevo_times"):
    OmegaConf.register_new_resolver("lossevo_times", times)


def compose_config(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose a config the way the entry scripts do: inside a running Hydra app with its search
    path (``--config-dir`` included), elsewhere from the project's ``conf/``."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=overrides or [])
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides or [])


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
        if isinstance(err, InstantiationException) and cause is err:
            message = str(err).splitlines()[0]
        else:
            message = f"{type(cause).__name__}: {cause}"
        raise LossevoError(f"bad `{where}` config: {message}") from None


def without_hydra(cfg: DictConfig) -> DictConfig:
    """A copy of a composed config without the ``hydra`` node."""
    return OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])


def plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data (for W&B and the journal)."""
    return OmegaConf.to_container(without_hydra(cfg), resolve=True)  # type: ignore[return-value]


class RunFolderCheck(Callback):
    """Before Hydra writes its logs and configs: a run folder that cannot be written (read-only,
    or on a full disk) stops the run with one line instead of Hydra's traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(str(config.hydra.run.dir)).absolute()
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        try:
            tempfile.TemporaryFile(dir=existing).close()
        except OSError as err:
            from lossevo.database import storage_problem

            print(f"error: {storage_problem(folder, err)}", file=sys.stderr)
            sys.exit(2)
