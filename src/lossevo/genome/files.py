"""Reading and writing genome files (JSON or YAML), with one clear error for a bad file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from lossevo.errors import GenomeError
from lossevo.genome.base import Genome, genome_from_dict

# Limits on what a genome file may be (an evolved genome is a few kB, its tree a dozen levels
# deep): beyond them parsing, building and sympy recurse or allocate without bound.
MAX_FILE_BYTES = 1 << 20
MAX_NESTING = 200  # mappings and lists inside each other (a tree node is two: its mapping, its args)


def load_genome_file(path: str | Path) -> Genome:
    """Load a genome from ``.json``/``.yaml``/``.yml``.

    The file holds either the genome mapping itself or a loss config with a ``genome`` key (as
    written by ``evolve.py`` under ``<run>/conf/loss/``).
    """
    if not str(path).strip():
        raise GenomeError("no genome file given (the path is empty): name a .json or .yaml genome file")
    path = Path(path)
    if path.is_dir():
        raise GenomeError(f"{str(path)!r} is a folder, not a genome file: name a .json or .yaml genome file")
    if not path.is_file():
        raise GenomeError(f"genome file {str(path)!r} does not exist")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise GenomeError(
            f"{str(path)!r} is {path.stat().st_size:,} bytes; a genome file is at most {MAX_FILE_BYTES:,} "
            "(an evolved genome is a few kB): name a genome file, e.g. <run>/conf/loss/best_1.yaml"
        )
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise GenomeError(
            f"{str(path)!r} is a binary file, not a genome file (JSON or YAML text, e.g. "
            "<run>/conf/loss/best_1.yaml)"
        ) from None
    too_deep = False
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0]
        raise GenomeError(f"genome file {str(path)!r} is not valid JSON/YAML: {first}") from None
    except RecursionError:  # nested past Python's stack
        data, too_deep = None, True
    if too_deep or nesting(data) > MAX_NESTING:
        raise GenomeError(
            f"genome file {str(path)!r} is nested more than {MAX_NESTING} levels deep (a tree deeper than "
            f"{MAX_NESTING // 2}); no search space makes such a loss: simplify it or name another file"
        )
    if isinstance(data, dict) and "genome" in data:
        data = data["genome"]
    try:
        return genome_from_dict(data)
    except GenomeError as err:
        raise GenomeError(f"genome file {str(path)!r}: {err}") from None


def nesting(data: Any) -> int:
    """How deeply mappings and lists nest in ``data`` (0 for a scalar), without recursion."""
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


def save_genome_file(genome: Genome, path: str | Path) -> Path:
    path = Path(path)
    data = genome.to_dict()
    if path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
