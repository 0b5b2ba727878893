"""lossevo from Python: ``lossevo.evolve``, ``lossevo.train`` and ``lossevo.validate`` take the
overrides of the command line and return results, not exit codes; they print nothing (the log
says what happens, as ``logging`` is configured).

    import lossevo
    result = lossevo.evolve(["dataset=digits", "search.budget=12"], run_dir="runs/first")
    print(result.sentence)           # the verdict, as the command prints it
    loss = result.losses()[0]        # best_1 as a torch module: loss(logits, target)

Each call composes the same config the command would (Hydra's compose API, no command line),
runs the same code and resumes the same way: the same ``run_dir`` again continues a search.
Mistakes are :class:`~lossevo.errors.LossevoError` with the command's one-line message.

Below them, the functions the commands run (:func:`open_search`, :func:`search_of`,
:func:`train_seeds`, :func:`journalled_run`): the CLI (``lossevo.cli.commands``) calls these and
prints around them (a progress bar, tables); this module never imports the CLI.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from hydra.core.hydra_config import HydraConfig

from lossevo.config.checks import check
from lossevo.config.command_line import override_value, overrides_list
from lossevo.config.composer import ConfigComposer
from lossevo.errors import LossevoError

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from lossevo.analysis.train_loss import TrainingOutcome
    from lossevo.losses.base import Loss
    from lossevo.search.driver import Driver
    from lossevo.search.outputs import SearchOutcome
    from lossevo.tracking.progress import SearchProgress
    from lossevo.verdict.rows import Verdict

log = logging.getLogger("lossevo")


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
    overrides = overrides_list(overrides)
    folder = _run_folder(run_dir, "evolve")
    cfg = _compose("evolve", overrides)
    _write_overrides(folder, overrides)
    return SearchResult(folder, open_search(cfg, folder, overrides).run())


def validate(run_dir: str | Path, overrides: Sequence[str] = ()) -> SearchResult:
    """The verdict of an earlier search, as ``python validate.py run=<run_dir> <overrides>``
    (``runs=8``, ``steps=[900,3600]``, ``baselines=[reference,poly1]``, ...)."""
    run = override_value(str(Path(run_dir)), "run_dir")
    cfg, folder, search_overrides = search_of(
        _compose("validate", [f"run={run}", *overrides_list(overrides)])
    )
    return SearchResult(folder, open_search(cfg, folder, search_overrides).run())


def train(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> TrainingOutcome:
    """Train one loss ``seeds`` times, as ``python train.py <overrides>`` would (results.csv and
    result.yaml in ``run_dir``); raises when every training failed."""
    outcome = train_seeds(_compose("train", overrides_list(overrides)), _run_folder(run_dir, "train"))
    check_trained(outcome)
    return outcome


# ---------------------------------------------------------------------------- what the commands run
def hydra_context() -> tuple[Path | None, str | None, list[str]]:
    """Run folder, config name and the user's overrides when running inside ``@hydra.main``."""
    if not HydraConfig.initialized():
        return None, None, []
    hc = HydraConfig.get()
    return Path(hc.runtime.output_dir), hc.job.config_name, list(hc.overrides.task)


def run_folder(run_dir: str | Path | None) -> Path:
    """``run_dir``, else the Hydra app's output folder, else the current one."""
    hydra_dir, _, _ = hydra_context()
    return Path(run_dir) if run_dir is not None else (hydra_dir or Path("."))


def sweep_root() -> Path | None:
    """The root of the multirun this job belongs to (None: not a multirun job)."""
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir)


def journalled_run(
    cfg: DictConfig, run_dir: str | Path | None, overrides: Sequence[str] | None, entry: str
) -> tuple[Path, ConfigComposer]:
    """The run folder and training-config composer of an evolve / correlate / eliminate run.
    Outside a Hydra app the caller names the folder and gives the overrides ``cfg`` was composed with."""
    check(cfg)  # a value out of range is one line naming it, before anything is built or recorded
    hydra_dir, config_name, hydra_overrides = hydra_context()
    folder = Path(run_dir) if run_dir is not None else hydra_dir
    if folder is None:
        raise LossevoError(f"run_{entry} needs a run folder outside a Hydra app (run_dir=...)")
    given = hydra_overrides if overrides is None else list(overrides)
    name = config_name if (config_name and overrides is None) else entry
    return folder, ConfigComposer(cfg, name, given)


def open_search(
    cfg: DictConfig,
    run_dir: str | Path | None = None,
    overrides: Sequence[str] | None = None,
    on_result: Callable[[Any, Any, int], None] | None = None,
    progress: SearchProgress | None = None,
) -> Driver:
    """A search (new, or resumed from its folder's journal) ready to ``run()``; a multirun's job
    shares its verdict's baselines with the sweep's other searches."""
    from lossevo.search.driver import Driver

    folder, composer = journalled_run(cfg, run_dir, overrides, "evolve")
    driver = Driver(cfg, folder, composer, on_result=on_result, progress=progress, sweep_root=sweep_root())
    done = driver.journal.count()
    if done:
        log.info("resuming %s: %d of %d candidates already evaluated", folder, done, driver.settings.budget)
    return driver


def search_of(cfg: DictConfig) -> tuple[DictConfig, Path, list[str]]:
    """``validate.py``'s search recomposed: its evolve config, folder and overrides (its own command
    line plus ``runs``/``top_k``/``alpha``/``steps``/...), so the search trains only what its
    journal lacks (an unfinished search is resumed first)."""
    from lossevo.config import compose_config
    from lossevo.config.stored_overrides import read_stored_overrides

    folder = Path(str(cfg.run))
    saved = folder / ".hydra" / "overrides.yaml"
    if not (folder / "journal.sqlite").is_file():
        raise LossevoError(f"run={folder} holds no journal.sqlite; give a search's run folder")
    if not saved.is_file():
        raise LossevoError(
            f"{folder} has no .hydra/overrides.yaml to recompose the search from; re-run the search's own "
            f"command with hydra.run.dir={folder} and validate.runs=N instead"
        )
    trusted = [str(o) for o in cfg.get("overrides") or []]
    overrides = read_stored_overrides(folder, trusted) + trusted
    given = ("runs", "resolution", "spread", "tune", "top_k", "alpha", "steps", "baselines", "settings")
    overrides += [f"validate.{key}={cfg[key]}" for key in given if cfg.get(key) is not None]
    return compose_config("evolve", overrides), folder, overrides


def train_seeds(cfg: DictConfig, run_dir: str | Path | None = None) -> TrainingOutcome:
    """``train.py``: one loss trained ``seeds`` times with the configured recipe (results.csv)."""
    from lossevo.analysis.train_loss import train_loss

    check(cfg)
    return train_loss(cfg, run_folder(run_dir), str(cfg.get("setting") or setting_label(cfg)))


def check_trained(outcome: TrainingOutcome) -> None:
    """Every training failed: recorded in results.csv, but nothing to report."""
    if not outcome.finished:
        raise LossevoError(
            f"every training of {outcome.name} failed ({len(outcome.results)} of {len(outcome.seeds)}); "
            "see the reasons in results.csv"
        )


def setting_label(cfg: DictConfig) -> str:
    """dataset/model/augment as chosen on the command line (Hydra's choices), for result tables."""
    if HydraConfig.initialized():
        choices = HydraConfig.get().runtime.choices
        parts = [choices.get(g) for g in ("dataset", "model", "augment")]
        if choices.get("experiment"):
            parts.insert(0, choices.get("experiment"))
        return "/".join(str(p) for p in parts if p)
    return "/".join(
        str(cfg[g].get("_target_", g)).rsplit(".", 1)[-1] for g in ("dataset", "model") if g in cfg
    )


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
