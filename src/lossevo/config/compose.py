"""Composing lossevo's Hydra configs outside an entry script, and the resolvers they use."""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

# The project's configs (conf/ in a clone, lossevo/conf once installed), for composing outside an
# entry script (tests, notebooks).
CONF_DIR = Path(str(importlib.resources.files("lossevo.conf")))


def short_dirname(overrides: str, limit: int = 100) -> str:
    """A folder name for a multirun job from its overrides (``dataset-digits__seed-0``: Hydra joins
    them with ``-`` and ``__``, conf/hydra/default.yaml) that can be passed back as ``run=<folder>``
    unquoted: characters Hydra's override grammar or a file system would take apart (``=``, ``,``,
    brackets, quotes, spaces, ``/``) become ``_``; a long name is a readable prefix and a hash of
    the whole (file systems refuse names over 255 bytes)."""
    name = _UNSAFE.sub("_", overrides) or "default"
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(overrides.encode()).hexdigest()[:10]
    return f"{name[: limit - 11]}-{digest}"


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+@-]")


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


def without_hydra(cfg: DictConfig) -> DictConfig:
    """A copy of a composed config without the ``hydra`` node."""
    return OmegaConf.masked_copy(cfg, [str(k) for k in cfg if k != "hydra"])


def plain(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data (for W&B and the journal)."""
    return resolved(without_hydra(cfg))


def resolved(node: Any) -> dict[str, Any]:
    """A mapping config node, resolved, as a plain dict (interpolations read the whole config)."""
    data = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node
    if not isinstance(data, dict):
        raise TypeError(f"expected a mapping config node, got {type(data).__name__}")
    return {str(k): v for k, v in data.items()}
