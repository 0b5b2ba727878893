"""Module paths of lossevo 0.1, before the package was grouped by role.

Configs, candidate folders and run journals written by lossevo 0.1 name modules by their old
paths (``_target_: lossevo.augment.Pipeline``, ``lossevo.schedules.warmup_cosine``,
``lossevo.strategies.RegularizedEvolution``, ...). Two things keep them valid: an import hook
that makes each old module an alias of the new one (so Hydra's ``instantiate`` of an old config
builds the same object), and :func:`current`, which a run's identity applies to every
``_target_``, so a run folder made before the move resumes (tests/test_old_runs.py).

Old names that are packages now (``lossevo.config``, ``lossevo.training``, ``lossevo.verdict``,
``lossevo.tracking``, ``lossevo.cli``) are not aliased; ``lossevo.config.RunFolderCheck`` is
importable from the package as before.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

MOVED = {
    "lossevo.settings": "lossevo.config.settings",
    "lossevo.composer": "lossevo.config.composer",
    "lossevo.integrity": "lossevo.genome.integrity",
    "lossevo.loss": "lossevo.losses.base",
    "lossevo.augment": "lossevo.data.augment",
    "lossevo.surrogate": "lossevo.training.surrogate",
    "lossevo.module": "lossevo.training.classifier",
    "lossevo.population": "lossevo.training.population",
    "lossevo.schedules": "lossevo.training.schedules",
    "lossevo.tasks": "lossevo.execution.tasks",
    "lossevo.executors": "lossevo.execution.executors",
    "lossevo.database": "lossevo.store.database",
    "lossevo.journal": "lossevo.store.journal",
    "lossevo.identity": "lossevo.store.identity",
    "lossevo.driver": "lossevo.search.driver",
    "lossevo.fidelity": "lossevo.search.fidelity",
    "lossevo.objectives": "lossevo.execution.objectives",
    "lossevo.search.objectives": "lossevo.execution.objectives",
    "lossevo.strategies": "lossevo.search.strategies",
    "lossevo.study": "lossevo.analysis.study",
    "lossevo.elimination": "lossevo.analysis.elimination",
    "lossevo.rank_correlation": "lossevo.analysis.rank_correlation",
    "lossevo.correlation_report": "lossevo.analysis.correlation_report",
    "lossevo.evolution_report": "lossevo.analysis.evolution_report",
    "lossevo.loss_report": "lossevo.analysis.loss_report",
    "lossevo.plots": "lossevo.analysis.plots",
    "lossevo.statistics": "lossevo.analysis.statistics",
    "lossevo.dashboard": "lossevo.tracking.dashboard",
    "lossevo.progress": "lossevo.tracking.progress",
    "lossevo.commands": "lossevo.cli.apps",
}


def current(path: str) -> str:
    """A dotted path (module, or module + attribute) as it is named today."""
    for old, new in MOVED.items():
        if path == old or path.startswith(old + "."):
            return new + path[len(old) :]
    return path


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        pass  # the module it aliases is already executed


class _MovedFinder(importlib.abc.MetaPathFinder):
    """Finds an old module path (or a module below one) as the module it moved to."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        new = current(fullname)
        if new == fullname:
            return None
        return importlib.util.spec_from_loader(fullname, _Alias(new))


def install() -> None:
    if not any(isinstance(finder, _MovedFinder) for finder in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
