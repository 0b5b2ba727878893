"""Unpickling that admits only what a file format holds.

``pickle.load`` runs whatever a file tells it to (an object's ``__reduce__`` can call
``os.system``), so a data folder someone hands you could run code. The one format lossevo reads
as pickles is plain data: CIFAR's python batches (dicts of bytes, lists, numbers and numpy
arrays). :func:`load` reads one with a restricted unpickler: builtin containers and scalars always,
plus the globals a format names; anything else is refused with one line naming the file and the
global. (Tensors load with ``torch.load(weights_only=True)``, arrays with ``allow_pickle=False``;
the CMA-ES state in a journal is plain data, lossevo.search.strategies.cma_es.)
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable, Collection
from typing import Any

from lossevo.errors import LossevoError

# numpy arrays, dtypes and scalars as numpy 1.x and 2.x pickle them (the module moved in 2.0).
NUMPY = frozenset(
    {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        *(
            (m, name)
            for m in ("numpy.core.multiarray", "numpy._core.multiarray")
            for name in ("_reconstruct", "scalar")
        ),
        *((m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric")),
        ("_codecs", "encode"),  # protocol 2 writes bytes through it
    }
)


class _Restricted(pickle.Unpickler):
    def __init__(
        self, file: io.BufferedIOBase, allowed: Callable[[str, str], bool], where: str, **kw: Any
    ) -> None:
        super().__init__(file, **kw)
        self._allowed = allowed
        self._where = where

    def find_class(self, module: str, name: str) -> Any:
        if self._allowed(module, name):
            return super().find_class(module, name)
        raise LossevoError(
            f"{self._where} asks to load {module}.{name}, which its format never holds; it was not "
            "loaded (a crafted file could run code this way): replace it with a genuine one"
        )


def load(data: bytes, where: str, allowed: Collection[tuple[str, str]] = NUMPY, **kwargs: Any) -> Any:
    """Unpickle ``data`` (named ``where`` in messages) admitting only the globals ``allowed``; any
    other global is a :class:`LossevoError`."""

    def permitted(module: str, name: str) -> bool:
        return (module, name) in allowed

    try:
        return _Restricted(io.BytesIO(data), permitted, where, **kwargs).load()
    except LossevoError:
        raise
    except Exception as err:
        raise LossevoError(f"{where} is not a readable pickle ({type(err).__name__}: {err})") from None
