"""lossevo from Python: ``lossevo.evolve``, ``lossevo.train`` and ``lossevo.validate`` take the
overrides of the command line and return results, not exit codes.

    import lossevo
    result = lossevo.evolve(["dataset=digits", "search.budget=12"], run_dir="runs/first")
    print(result.sentence)           # the verdict, as the command prints it
    loss = result.losses()[0]        # best_1 as a torch module: loss(logits, target)

Each call composes the same config the command would (Hydra's compose API, no command line),
runs the same code and resumes the same way: the same ``run_dir`` again continues a search.
Mistakes are :class:`~lossevo.errors.LossevoError` with the command's one-line message.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from lossevo.config.command_line import override_value, overrides_list
from lossevo.errors import LossevoError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from lossevo.losses.base import Loss
    from lossevo.search.outputs import SearchOutcome
    from lossevo.training.train_loss import TrainingOutcome
    from lossevo.verdict.rows import Verdict


@dataclass(frozen=True)
class SearchResult:
    """A search's outcome: its folder, its best losses (best first) and its verdict."""

    run_dir: Path
    outcome: SearchOutcome

    @property
    def verdict(self) -> Verdict | None:
        return self.outcome.verdict

    @property
    def sentence(self) -> str | None:
        """The verdict's sentence (None without a verdict, e.g. ``validate.runs=0``)."""
        return None if self.verdict is None else self.verdict.sentence()

    @property
    def loss_files(self) -> list[Path]:
        """``<run_dir>/conf/loss/best_<k>.yaml``: ``loss=best_1`` configs for train.py."""
        return list(self.outcome.loss_configs)

    @property
    def standalone_files(self) -> list[Path]:
        """``<run_dir>/export/best_<k>.py``: the same losses as files that need only torch."""
        return [self.run_dir / "export" / f"{path.stem}.py" for path in self.loss_files]

    def losses(self) -> list[Loss]:
        """The best losses as torch modules, best first (``loss(logits, target)``); each file is read
        as data (a genome and its label smoothing), nothing in it is called."""
        from lossevo.genome.files import read_genome_file
        from lossevo.losses.base import GenomeLoss

        out: list[Loss] = []
        for path in self.loss_files:
            data = read_genome_file(path)
            out.append(GenomeLoss(data.genome, name=path.stem, label_smoothing=data.label_smoothing))
        return out


def evolve(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> SearchResult:
    """Run (or resume) a search and its verdict, as ``python evolve.py <overrides>`` would; a new
    folder under ``outputs/evolve/`` when ``run_dir`` is None."""
    from lossevo.cli.commands import run_evolve

    overrides = overrides_list(overrides)
    folder = _run_folder(run_dir, "evolve")
    cfg = _compose("evolve", overrides)
    _write_overrides(folder, overrides)
    outcome = run_evolve(cfg, run_dir=folder, overrides=overrides)
    return SearchResult(folder, outcome)


def validate(run_dir: str | Path, overrides: Sequence[str] = ()) -> SearchResult:
    """The verdict of an earlier search, as ``python validate.py run=<run_dir> <overrides>``
    (``runs=8``, ``steps=[900,3600]``, ``baselines=[reference,poly1]``, ...)."""
    from lossevo.cli.commands import run_validate

    folder = Path(run_dir)
    run = override_value(str(folder), "run_dir")
    outcome = run_validate(_compose("validate", [f"run={run}", *overrides_list(overrides)]))
    return SearchResult(folder, outcome)


def train(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> TrainingOutcome:
    """Train one loss ``seeds`` times, as ``python train.py <overrides>`` would (results.csv and
    result.yaml in ``run_dir``); raises when every training failed."""
    from lossevo.cli.commands import run_train

    folder = _run_folder(run_dir, "train")
    return run_train(_compose("train", overrides_list(overrides)), run_dir=folder)


def _compose(config_name: str, overrides: list[str]) -> DictConfig:
    """Compose like the command line; a bad override is a LossevoError with Hydra's first line."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from lossevo.config import compose_config
    from lossevo.tracking.artifacts import resolve_overrides

    try:
        return compose_config(config_name, resolve_overrides(list(overrides)))
    except (HydraException, OmegaConfBaseException) as err:
        raise LossevoError(f"{config_name}: {str(err).splitlines()[0]}") from None


def _run_folder(run_dir: str | Path | None, entry: str) -> Path:
    """``run_dir``, or a new ``outputs/<entry>/<date>/<time>`` as the command line makes."""
    if run_dir is None:
        now = datetime.datetime.now()
        run_dir = Path("outputs") / entry / f"{now:%Y-%m-%d}" / f"{now:%H-%M-%S-%f}"
    if not str(run_dir).strip():  # Path("") is the current folder, with the user's files
        raise LossevoError(
            "run_dir is empty: name the run's own folder, or pass None for a new one under outputs/"
        )
    return Path(run_dir)


def _write_overrides(folder: Path, overrides: Sequence[str]) -> None:
    """``<folder>/.hydra/overrides.yaml``, as a Hydra run writes it (``validate`` recomposes a
    search from it)."""
    path = folder / ".hydra" / "overrides.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(list(overrides)))
