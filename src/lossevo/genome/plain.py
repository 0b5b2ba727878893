"""What genome data may hold before any of it is parsed, built or shown.

A genome read from a journal, a loss file or a ``best_k.yaml`` is data from a file: it must never
reach Hydra's ``instantiate`` or OmegaConf's interpolation. Every string a genome holds is the name
of an op, an input, a leaf, a node or a primitive set, so allowing only plain names (letters,
digits, ``_``; no ``${``, ``.``, spaces) and only known keys (checked by each space's ``from_dict``)
leaves nothing in it that Hydra or OmegaConf would act on, whatever config it is later copied into.
The size limits keep parsing, canonical forms and sympy bounded (an evolved genome is a few kB).
"""

from __future__ import annotations

import math
import re
from typing import Any

from lossevo.errors import GenomeError

MAX_NESTING = 200  # mappings and lists inside each other (a tree node is two: its mapping, its args)
MAX_ITEMS = 20_000  # keys, list items and values in all
MAX_MAGNITUDE = 1e12  # constants, coefficients and Taylor parameters (evolved ones are below 1e3)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def check_plain(data: Any, names: bool = True) -> None:
    """Raise :class:`GenomeError` unless ``data`` is mappings, lists, plain names and finite numbers
    within the limits above (``names=False``: only the size limits). Iterative, so a nesting past
    Python's stack is refused, not a crash."""
    items, stack = 0, [(data, 0, "genome")]
    while stack:
        value, depth, where = stack.pop()
        items += 1
        if items > MAX_ITEMS:
            raise GenomeError(f"the genome holds more than {MAX_ITEMS:,} values; no search space makes one")
        if isinstance(value, dict):
            _deeper(depth)
            for key, child in value.items():
                if names and (not isinstance(key, str) or not _NAME.fullmatch(key)):
                    raise GenomeError(f"{where}: key {_shown(key)} is not a plain name")
                stack.append((child, depth + 1, f"{where}.{key}"))
        elif isinstance(value, list | tuple):
            _deeper(depth)
            stack.extend((child, depth + 1, f"{where}[{i}]") for i, child in enumerate(value))
        elif not names:
            continue
        elif isinstance(value, str):
            if not _NAME.fullmatch(value):
                raise GenomeError(
                    f"{where}: {_shown(value)} is not a plain name (a genome's strings name ops, inputs, "
                    "leaves and nodes: letters, digits and _)"
                )
        elif isinstance(value, bool) or value is None:
            continue
        elif isinstance(value, int | float):
            if not _finite(value):
                raise GenomeError(
                    f"{where}: {_shown(value)} is not a finite number of magnitude at most {MAX_MAGNITUDE:g}"
                )
        else:
            raise GenomeError(f"{where}: a genome holds no {type(value).__name__} values")


def nesting(data: Any) -> int:
    """How deeply mappings and lists nest in ``data`` (0 for a scalar), without recursion; stops
    counting past :data:`MAX_NESTING`."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth + 1)
        if deepest > MAX_NESTING:
            return deepest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _deeper(depth: int) -> None:
    if depth >= MAX_NESTING:
        raise GenomeError(
            f"the genome is nested more than {MAX_NESTING} levels deep (a tree deeper than "
            f"{MAX_NESTING // 2}); no search space makes such a loss"
        )


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(value) and abs(value) <= MAX_MAGNITUDE
    except OverflowError:  # an int past float's range
        return False


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
