"""Weights & Biases tracking that can never stop a search.

``mode: auto`` runs online when an API key is configured and offline otherwise (local run files
under ``<run dir>/wandb``, uploaded later with ``wandb sync``), unless ``WANDB_MODE`` in the
environment says otherwise; ``logger=none`` stays off whatever the environment says. Every call
is guarded: after the first W&B error tracking turns itself off with one warning, and the search
goes on.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)


def _has_api_key() -> bool:
    """A key in the environment, or ``wandb login``'s entry in ~/.netrc for the server W&B talks
    to: ``WANDB_BASE_URL``'s host (a self-hosted server) or the public one."""
    from urllib.parse import urlparse

    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return f"machine {host}" in " ".join(netrc.read_text().split())
    except OSError:
        return False


def resolve_mode(configured: str) -> str:
    """The W&B mode: disabled if the config or ``WANDB_MODE`` says so (either can switch tracking
    off, neither on against the other); else the config's, or for ``auto`` the environment's, else
    online with a key."""
    env = os.environ.get("WANDB_MODE")
    if configured == "disabled" or env in ("disabled", "dryrun_disabled"):
        return "disabled"
    if configured != "auto":
        return configured
    return env or ("online" if _has_api_key() else "offline")


class Tracker:
    """One W&B run (e.g. a search, grouped by its run folder) or a no-op when disabled."""

    def __init__(
        self,
        cfg: DictConfig | None,
        run_dir: Path,
        group: str,
        job_type: str,
        name: str | None = None,
        config: dict[str, Any] | None = None,
    ) -> None:
        self.run: Any = None
        settings = cfg if cfg is not None else OmegaConf.create({"mode": "disabled"})
        self.mode = resolve_mode(str(settings.get("mode", "auto")))
        if self.mode == "disabled":
            return
        try:
            os.environ.setdefault("WANDB_SILENT", "true")
            if os.environ.get("WANDB_MODE") == "":  # an empty value is "unset" to us, an error to wandb
                del os.environ["WANDB_MODE"]
            import wandb

            run_dir.mkdir(parents=True, exist_ok=True)
            init = dict(
                project=settings.get("project", "lossevo"),
                entity=settings.get("entity"),
                group=group,
                job_type=job_type,
                name=name,
                dir=str(run_dir),
                config=config,
                tags=list(settings.get("tags") or []),
                mode=self.mode,
                resume="allow",
                id=_run_id(run_dir, job_type, name),
                settings=wandb.Settings(init_timeout=60, silent=True, console="off"),
            )
            try:
                self.run = wandb.init(**init)
            except Exception as err:  # no network with a key: fall back to offline files
                if self.mode != "online":
                    raise
                log.warning("W&B online init failed (%s); logging offline instead", err)
                self.mode = init["mode"] = "offline"
                self.run = wandb.init(**init)
        except Exception as err:
            self._disable(err)

    @property
    def active(self) -> bool:
        return self.run is not None

    def _disable(self, err: BaseException) -> None:
        log.warning("W&B tracking disabled after an error: %s: %s", type(err).__name__, err)
        self.run = None

    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        if self.run is None:
            return
        try:
            self.run.log(data, step=step)
        except Exception as err:
            self._disable(err)

    def summary(self, data: dict[str, Any]) -> None:
        if self.run is None:
            return
        try:
            self.run.summary.update(data)
        except Exception as err:
            self._disable(err)

    def table(self, key: str, columns: list[str], rows: list[list[Any]]) -> None:
        if self.run is None:
            return
        try:
            import wandb

            # A PNG path in a cell becomes an image (e.g. a candidate's phenotype).
            data = [
                [wandb.Image(str(v)) if isinstance(v, Path) and v.suffix == ".png" else v for v in row]
                for row in rows
            ]
            names: list[str | int] = list(columns)
            self.run.log({key: wandb.Table(columns=names, data=data)})
        except Exception as err:
            self._disable(err)

    def images(self, images: dict[str, Path]) -> None:
        if self.run is None:
            return
        try:
            import wandb

            self.run.log({key: wandb.Image(str(path)) for key, path in images.items()})
        except Exception as err:
            self._disable(err)

    def artifact(
        self, name: str, kind: str, files: list[Path], metadata: dict[str, Any], description: str = ""
    ) -> None:
        """Log ``files`` as one artifact (offline: staged with the run, uploaded by ``wandb sync``)."""
        if self.run is None:
            return
        try:
            import wandb

            artifact = wandb.Artifact(name, type=kind, description=description, metadata=metadata)
            for path in files:
                artifact.add_file(str(path), name=path.name)
            self.run.log_artifact(artifact, aliases=["latest"])
        except Exception as err:
            self._disable(err)

    def finish(self) -> None:
        if self.run is None:
            return
        try:
            self.run.finish()
        except Exception as err:
            self._disable(err)
        self.run = None


def saved_logger(folder: Path) -> dict[str, Any]:
    """The logger settings a run folder was made with (its ``.hydra/config.yaml``; {} if none)."""
    from lossevo.config import resolved

    saved = folder / ".hydra" / "config.yaml"
    if not saved.is_file():
        return {}
    return dict(resolved(OmegaConf.load(saved)).get("logger") or {})


def group_for(folder: Path) -> str:
    """The W&B group of a run folder (every run it logs, and ``lossevo dashboard``): the folder's
    label (:func:`run_label`), or for a job of a multirun its sweep's, so the seeds of one sweep
    are one group (each job's run is named after its folder and carries its seed in its config)."""
    folder = folder.resolve()
    return _label(folder.parent) if _is_sweep_job(folder) else _label(folder)


def run_label(folder: Path) -> str:
    """What names one run folder across W&B (its ``loss`` artifact): its label, or for a job of a
    multirun its sweep's label and its own folder name (jobs of different sweeps share names)."""
    folder = folder.resolve()
    return f"{_label(folder.parent)}_{folder.name}" if _is_sweep_job(folder) else _label(folder)


def _is_sweep_job(folder: Path) -> bool:
    return (folder.parent / "multirun.yaml").is_file()


def _label(folder: Path) -> str:
    """The folder's name, with the date for Hydra's default ``<date>/<time>`` folders, whose time
    alone repeats every day."""
    dated = re.fullmatch(r"\d{4}-\d{2}-\d{2}", folder.parent.name)
    if dated and re.fullmatch(r"\d{2}-\d{2}-\d{2}", folder.name):
        return f"{folder.parent.name}_{folder.name}"
    return folder.name or "lossevo"


def _run_id(run_dir: Path, job_type: str, name: str | None) -> str:
    """A stable run id per run folder, so a resumed search continues the same W&B run."""
    import hashlib

    digest = hashlib.sha1(f"{run_dir.resolve()}:{job_type}:{name}".encode()).hexdigest()
    return digest[:16]
