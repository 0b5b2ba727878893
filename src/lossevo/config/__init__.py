"""The settings layer: composing lossevo's Hydra configs, building objects from them, and the typed
settings the rest of the package reads (``lossevo.config.settings``).

The helpers most modules need are importable from here: ``compose_config``, ``build``, ``plain``,
``without_hydra``, ``CONF_DIR``; ``RunFolderCheck`` is the Hydra callback of ``conf/hydra``.
"""

from lossevo.config.build import build
from lossevo.config.compose import (
    CONF_DIR,
    compose_config,
    plain,
    resolved,
    short_dirname,
    times,
    without_hydra,
)
from lossevo.config.run_folder import RunFolderCheck

__all__ = [
    "CONF_DIR",
    "RunFolderCheck",
    "build",
    "compose_config",
    "plain",
    "resolved",
    "short_dirname",
    "times",
    "without_hydra",
]
