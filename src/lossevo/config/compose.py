"""Composing lossevo's Hydra configs outside an entry script, and the resolvers they use."""

from __future__ import annotations

import hashlib
import importlib.resources
import re
import sys
import threading
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

# The project's configs (conf/ in a clone, lossevo/conf once installed), for composing outside an
# entry script (tests, notebooks).
CONF_DIR = Path(str(importlib.resources.files("lossevo.conf")))


def short_dirname(overrides: str, limit: int = 100) -> str:
    """A folder name for a multirun job from its overrides (``search-random__seed-0``: Hydra joins
    them with ``-`` and ``__``, conf/hydra/default.yaml): only the overrides the sweep varies when
    the command line says which (the job's full list stays in its ``.hydra/overrides.yaml``). It
    can be passed back as ``run=<folder>`` unquoted: characters Hydra's override grammar or a file
    system would take apart (``=``, ``,``, brackets, quotes, spaces, ``/``) become ``_``; a long
    name is a readable prefix and a hash of the whole (file systems refuse names over 255 bytes)."""
    swept = _swept_keys()
    if swept:
        kept = [item for item in overrides.split("__") if item.split("-", 1)[0] in swept]
        overrides = "__".join(kept) or overrides
    name = _UNSAFE.sub("_", overrides) or "default"
    if len(name) <= limit:
        return name
    digest = hashlib.sha1(overrides.encode()).hexdigest()[:10]
    return f"{name[: limit - 11]}-{digest}"


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+@-]")


def _swept_keys() -> set[str]:
    """The keys this process's multirun command line sweeps (``seed=0,1``, ``range(3)``); empty
    when it is not one (a job launched elsewhere names itself after all its overrides)."""
    args = [a for a in sys.argv[1:] if not a.startswith("-")]
    if not ({"-m", "--multirun"} & set(sys.argv[1:])) or not args:
        return set()
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parsed = OverridesParser.create().parse_overrides(args)
    except Exception:  # not overrides Hydra would read: name the job after all of them
        return set()
    return {o.key_or_group.lstrip("+~") for o in parsed if o.is_sweep_override()}


def times(value: int, factor: float) -> int:
    """``${lossevo_times:${surrogate.steps},4}``: a step count scaled, for rung ladders in configs."""
    return round(float(value) * float(factor))


if not OmegaConf.has_resolver("lossevo_dirname"):
    OmegaConf.register_new_resolver("lossevo_dirname", short_dirname)
if not OmegaConf.has_resolver("lossevo_times"):
    OmegaConf.register_new_resolver("lossevo_times", times)


_LOCK = threading.Lock()  # two threads composing at once would both initialise GlobalHydra


def compose_config(config_name: str, overrides: list[str] | None = None) -> DictConfig:
    """Compose a config the way the entry scripts do: inside a running Hydra app with its search
    path (``--config-dir`` included), elsewhere from the project's ``conf/``."""
    if GlobalHydra.instance().is_initialized() and not _LOCK.locked():
        return compose(config_name=config_name, overrides=overrides or [])
    with _LOCK, initialize_config_dir(str(CONF_DIR), version_base="1.3"):  # Hydra's state is global
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
