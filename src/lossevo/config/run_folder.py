"""The Hydra callback that checks a run folder is named and can be written before Hydra writes
into it."""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class RunFolderCheck(Callback):
    """Before Hydra writes its logs and configs: a run folder that cannot be written (read-only,
    or on a full disk) stops the run with one line instead of Hydra's traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not str(config.hydra.run.dir or "").strip():  # would be the current folder, with its files
            print(
                "error: hydra.run.dir is empty: name the run's own folder (hydra.run.dir=outputs/my_run), "
                "or leave it out for a new one under outputs/",
                file=sys.stderr,
            )
            sys.exit(2)
        folder = Path(str(config.hydra.run.dir)).absolute()
        keep_previous_command(folder)
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        try:
            tempfile.TemporaryFile(dir=existing).close()
        except OSError as err:
            from lossevo.store.database import storage_problem

            print(f"error: {storage_problem(folder, err)}", file=sys.stderr)
            sys.exit(2)


# A resumed run's command line as its folder held it before Hydra overwrote .hydra/ with this one:
# put back when the command is refused (settings that differ from the journal's), so the folder
# still describes its journal and validate.py recomposes the search it holds.
_PREVIOUS: dict[Path, bytes] = {}
_SAVED = ("config.yaml", "hydra.yaml", "overrides.yaml")


def keep_previous_command(folder: Path) -> None:
    """Before Hydra writes ``folder/.hydra``: keep what is there when a run database is too."""
    _PREVIOUS.clear()
    if any((folder / name).is_file() for name in ("journal.sqlite", "study.sqlite")):
        for name in _SAVED:
            path = folder / ".hydra" / name
            if path.is_file() and not path.is_symlink():
                _PREVIOUS[path] = path.read_bytes()


def restore_previous_command() -> None:
    """A refused command: its folder's .hydra/ back as it was (a no-op for a new folder)."""
    for path, data in _PREVIOUS.items():
        with contextlib.suppress(OSError):  # a read-only folder is refused for that reason already
            path.write_bytes(data)
    _PREVIOUS.clear()
