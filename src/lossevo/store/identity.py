"""A run's identity: every setting that changes a result, kept in its database and checked on resume.

A search, a study or an elimination resumed in the same folder must train exactly as it did
before, or its results would mix (32-bit and bf16 candidates, 15- and 10-step cells). The identity
is the run's resolved config without the keys that only change *where* or *how much* is trained
(executor, logger, budget, ...); a resume with any other difference is refused with the differing
values, before anything is trained or recorded. Module paths in ``_target_`` values are compared as
they are named today, so a run folder made before a module moved still resumes (:mod:`lossevo._moved`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lossevo._moved import current as current_path
from lossevo.errors import LossevoError
from lossevo.store.database import Database

# Never part of any run's identity: where it runs, where it logs, and the data's location.
ALWAYS_FREE = (
    "hydra",
    "logger",
    "executor",
    "candidate",
    "trainer.threads",
    "trainer.profiler",
    # How many candidates train together in one pass: a member trains as it would alone.
    "surrogate.population",
)
# A built-in dataset is the same images wherever it lies; a user's image folder is its content.
DATA_LOCATION = ("dataset.root", "dataset.download")
USER_FOLDERS = ("lossevo.data.image_folder",)


def identity(cfg: DictConfig, free: Iterable[str] = ()) -> dict[str, Any]:
    """``cfg`` resolved, as flat ``dotted.key -> value``, without the ``free`` keys (and below them)."""
    location = () if OmegaConf.select(cfg, "dataset._target_") in USER_FOLDERS else DATA_LOCATION
    skip = (*ALWAYS_FREE, *location, *free)
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if prefix in skip:
            return
        if isinstance(node, dict) and node:
            for k, v in node.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k))
        else:
            flat[prefix] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return _current_targets(flat)


def _current_targets(flat: dict[str, Any]) -> dict[str, Any]:
    """``_target_`` values as their modules are named today."""
    return {
        k: current_path(v) if k.endswith("_target_") and isinstance(v, str) else v for k, v in flat.items()
    }


def differences(stored: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """``key: stored -> current`` for every key whose value differs."""
    keys = sorted(set(stored) | set(current))
    missing = "(unset)"
    return [
        f"{k}: {stored.get(k, missing)!r} -> {current.get(k, missing)!r}"
        for k in keys
        if stored.get(k, missing) != current.get(k, missing)
    ]


def check_identity(
    db: Database,
    current: dict[str, Any],
    what: str,
    fresh: bool = False,
    key: str = "identity",
    same: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> None:
    """Record ``current`` in a new run; refuse a resume whose identity differs, showing how.

    ``fresh``: nothing has been trained in this run yet, so its identity is simply replaced (a
    command refused before any training, e.g. for a bad value, does not bind the folder).
    ``same``: writes equal settings one way (``unary_ops: null`` is the full list), applied to
    the stored and the current identity before they are compared."""
    stored = db.get_meta(key)
    if stored is not None:
        stored = _current_targets(stored)
    if same is not None:
        stored = None if stored is None else same(stored)
        current = same(current)
    if stored is None or (fresh and stored != current):
        db.set_meta(key, current)
        return
    changed = differences(stored, current)
    if changed:
        shown = "; ".join(changed[:6]) + (f"; and {len(changed) - 6} more" if len(changed) > 6 else "")
        raise LossevoError(
            f"{db.path.parent} holds a {what} with other settings ({shown}); resume it with the "
            "same settings, or start a new one with another hydra.run.dir"
        )
