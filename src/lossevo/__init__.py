"""lossevo: neural loss function search for image classifiers."""

from lossevo import _moved
from lossevo._version import __version__

_moved.install()  # configs and run folders of lossevo 0.1 name modules by their old paths

_API = ("evolve", "train", "validate", "SearchResult")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> object:
    """``lossevo.evolve`` / ``train`` / ``validate`` (lossevo.api), imported when first used so that
    ``import lossevo`` stays light."""
    if name in _API:
        from lossevo import api

        return getattr(api, name)
    raise AttributeError(f"module 'lossevo' has no attribute {name!r}")
