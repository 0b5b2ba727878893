"""The Hydra callback that checks a run folder can be written before Hydra writes into it."""

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
        folder = Path(str(config.hydra.run.dir)).absolute()
        existing = next(p for p in (folder, *folder.parents) if p.exists())
        try:
            tempfile.TemporaryFile(dir=existing).close()
        except OSError as err:
            from lossevo.store.database import storage_problem

            print(f"error: {storage_problem(folder, err)}", file=sys.stderr)
            sys.exit(2)
