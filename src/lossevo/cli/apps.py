"""The Hydra entry points, one per config: ``lossevo evolve ...`` or ``lossevo-evolve ...`` once
installed, ``python evolve.py ...`` in a clone. Each only hands its composed config to
:mod:`lossevo.cli.commands`.

The configs ship inside the package (``pkg://lossevo.conf``), so these work from any folder; a
user's own config folder joins with ``--config-dir=<folder>`` (its ``dataset/``, ``model/``,
``experiment/`` files next to lossevo's).
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from lossevo.cli import commands
from lossevo.config.command_line import check_command_line

CONFIGS = "pkg://lossevo.conf"


def _entry(config_name: str, run: Callable[[DictConfig], object], doc: str) -> Callable[[], None]:
    @hydra.main(config_path=CONFIGS, config_name=config_name, version_base="1.3")
    @commands.user_errors
    def main(cfg: DictConfig) -> None:
        run(cfg)

    @commands.user_errors
    def entry() -> None:
        check_command_line(sys.argv[1:])
        # loss=wandb:<artifact>: the loss=file overrides of the downloaded loss, before Hydra reads them.
        if any("=wandb:" in arg for arg in sys.argv[1:]):
            from lossevo.tracking.artifacts import resolve_overrides

            sys.argv[1:] = resolve_overrides(sys.argv[1:])
        main()

    entry.__name__, entry.__doc__ = config_name, doc
    return entry


evolve = _entry("evolve", commands.run_evolve, "Search for a loss function.")
train = _entry("train", commands.run_train, "Train one loss (seeds=N for final trainings).")
validate = _entry("validate", commands.run_validate, "The verdict of a search: finalists retrained, tested.")
correlate = _entry("correlate", commands.run_correlate, "Rank correlation of losses across settings.")
eliminate = _entry("eliminate", commands.run_eliminate, "Successive elimination of losses.")
report = _entry("report", commands.run_report, "Plots and equations of a loss, or the report of a search.")
ENTRIES = {
    "evolve": evolve,
    "train": train,
    "validate": validate,
    "correlate": correlate,
    "eliminate": eliminate,
    "report": report,
}
