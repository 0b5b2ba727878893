"""The Hydra callback that checks a run folder is named and can be written before Hydra writes
into it."""

from __future__ import annotations

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
            print("error: hydra.run.dir is empty: name the run's own folder (hydra.run.dir=outputs/my_run), "
                  "or leave it out for a new one under outputs/", file=sys.stderr)  # fmt: skip
            sys.exit(2)
        folder = Path(str(config.hydra.run.dir)).absolute()
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        try:
            tempfile.TemporaryFile(dir=existing).close()
        except OSError as err:
            from lossevo.store.database import storage_problem

            print(f"error: {storage_problem(folder, err)}", file=sys.stderr)
            sys.exit(2)
