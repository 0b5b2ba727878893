"""Where a built-in dataset's files are: an explicit ``dataset.root`` (or the dataset's environment
variable), else its default folders and the cache (``$LOSSEVO_DATA_DIR``); torchvision downloads
into them only with ``dataset.download=true``. Each file format's module declares its sources.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossevo.errors import LossevoError


def default_cache_dir() -> Path:
    """Where downloads go: ``$LOSSEVO_DATA_DIR`` or ``~/.cache/lossevo/data``."""
    env = os.environ.get("LOSSEVO_DATA_DIR")
    return Path(env) if env else Path.home() / ".cache" / "lossevo" / "data"


@dataclass(frozen=True)
class Source:
    """Where a dataset's files may be and how to fetch them."""

    title: str
    env: str  # environment variable naming its folder
    find: Callable[[Path], Path | None]  # the folder holding the files, at or below a root
    fetch: Callable[[Path], None]  # torchvision's download into a folder
    files: str  # what the folder must hold, for the error message
    install: str = ""  # another way to get it, for the error message
    defaults: tuple[Path, ...] = ()  # folders looked at before the cache


def locate(source: Source, root: str | None, download: bool) -> Path:
    """The folder holding ``source``'s files.

    An explicit ``root`` (config ``dataset.root`` or the source's environment variable) is the
    only place looked at (with ``download``, torchvision downloads into it). Without one: the
    source's default folders, then the cache (``$LOSSEVO_DATA_DIR``), downloading into the cache
    with ``download``.
    """
    explicit = root or os.environ.get(source.env)
    folders = [Path(explicit).expanduser()] if explicit else [*source.defaults, default_cache_dir()]
    for folder in folders:
        found = source.find(folder)
        if found is not None:
            return found
    tried = ", ".join(str(f) for f in folders)
    help_text = (
        f"Looked in: {tried}. {source.install}Point dataset.root= (or ${source.env}) at a folder "
        f"holding {source.files}, or pass dataset.download=true to fetch it with torchvision."
    )
    if not download:
        raise LossevoError(f"{source.title} not found. {help_text}")
    target = folders[0] if explicit else default_cache_dir()
    try:
        source.fetch(target)
    except Exception as err:  # network errors come in many types
        raise LossevoError(
            f"{source.title} download into {target} failed ({type(err).__name__}: {err}). {help_text}"
        ) from None
    found = source.find(target)
    if found is None:
        raise LossevoError(f"torchvision's download left no {source.title} files under {target}")
    return found


def first(*folders: Path, holding: Callable[[Path], bool]) -> Path | None:
    return next((f for f in folders if holding(f)), None)


def torchvision_fetch(cls_name: str, **splits: Any) -> Callable[[Path], None]:
    def fetch(folder: Path) -> None:
        import torchvision.datasets as tvd

        cls = getattr(tvd, cls_name)
        for kwargs in splits.get("splits", [{"train": True}, {"train": False}]):
            cls(root=str(folder), download=True, **kwargs)

    return fetch
