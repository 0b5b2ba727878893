"""The Hydra callback that compares the searches of a multirun when the sweep ends.

``python evolve.py -m search=random,regularized_evolution seed=0,1,2,3,4`` runs ten searches and
then writes ``comparison.md`` and its companions at the sweep's root (and, with the sweep's
logger, the comparison's W&B run), as ``lossevo compare <root>`` would (docs/methods.md §11).
Re-running the same command resumes the unfinished jobs and writes
the comparison again. A sweep of anything but searches, or of fewer than two, is left alone; a
comparison that fails says why in one warning and never fails the sweep.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lossevo.errors import LossevoError

log = logging.getLogger("lossevo")


class CompareAtSweepEnd(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from lossevo.analysis.comparison import compare_searches, find_searches
        from lossevo.analysis.comparison_report import sentences, write_comparison
        from lossevo.analysis.comparison_tracking import track_comparison
        from lossevo.analysis.search_record import read_search

        root = Path(str(config.hydra.sweep.dir))
        if str(config.hydra.job.config_name) != "evolve" or len(list(root.glob("*/journal.sqlite"))) < 2:
            return
        try:
            comparison = compare_searches([read_search(run) for run in find_searches([root])])
            files = write_comparison(comparison, root)
            track_comparison(comparison, files, config.get("logger"))
        except LossevoError as err:
            log.warning("the sweep's searches could not be compared: %s (lossevo compare %s)", err, root)
            return
        for line in [*sentences(comparison), *comparison.notes]:
            print(line)
        print(f"the sweep's searches compared: {files['markdown']}")
