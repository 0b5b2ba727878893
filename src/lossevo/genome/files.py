"""Reading and writing genome files (JSON or YAML), with one clear error for a bad file."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lossevo.errors import GenomeError
from lossevo.genome.base import Genome, genome_from_dict
from lossevo.genome.plain import MAX_NESTING, nesting

# An evolved genome is a few kB: beyond this, parsing, building and sympy allocate without bound.
MAX_FILE_BYTES = 1 << 20


# The keys of a loss config holding a genome (``<run>/conf/loss/best_k.yaml``, ``loss=genome``).
LOSS_TARGET = "lossevo.losses.genome_loss"
LOSS_KEYS = frozenset({"_target_", "name", "genome", "label_smoothing", "reduction"})
LOSS_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")  # best_1, candidate_7, my-loss.v2


@dataclass(frozen=True)
class GenomeFile:
    """A genome file read as data: the genome, and the label smoothing a loss config gives it."""

    genome: Genome
    label_smoothing: float = 0.0


def load_genome_file(path: str | Path) -> Genome:
    """Load a genome from ``.json``/``.yaml``/``.yml`` (see :func:`read_genome_file`)."""
    return read_genome_file(path).genome


def read_genome_file(path: str | Path) -> GenomeFile:
    """Read a genome file as data; nothing in it is instantiated or interpolated.

    The file holds either the genome mapping itself or a loss config with a ``genome`` key (as
    written by ``evolve.py`` under ``<run>/conf/loss/``), whose ``_target_`` may only be
    ``lossevo.losses.genome_loss``.
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
        data: Any = json.loads(text) if path.suffix == ".json" else safe_yaml(text)
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
    try:
        return loss_data(data)
    except GenomeError as err:
        raise GenomeError(f"genome file {str(path)!r}: {err}") from None


def loss_data(data: Any) -> GenomeFile:
    """A genome, or a genome loss config (``_target_: lossevo.losses.genome_loss``), as data."""
    smoothing = 0.0
    if isinstance(data, dict) and "genome" in data:
        unknown = sorted(str(k) for k in data if k not in LOSS_KEYS)
        if unknown:
            raise GenomeError(
                f"a genome loss config has no key(s) {', '.join(unknown)} (it has "
                f"{', '.join(sorted(LOSS_KEYS))})"
            )
        if data.get("_target_", LOSS_TARGET) != LOSS_TARGET:
            raise GenomeError(
                f"_target_ is {str(data['_target_'])[:60]!r}; a genome loss config's may only be "
                f"{LOSS_TARGET} (nothing read from a loss file is called)"
            )
        name = data.get("name", "genome")
        if not isinstance(name, str) or not LOSS_NAME.fullmatch(name):
            raise GenomeError(f"name must be letters, digits, '_', '.' and '-', got {str(name)[:60]!r}")
        smoothing = data.get("label_smoothing", 0.0)
        if isinstance(smoothing, bool) or not isinstance(smoothing, int | float) or not 0 <= smoothing < 1:
            raise GenomeError(f"label_smoothing must be a number in [0, 1), got {str(smoothing)[:60]!r}")
        data = data["genome"]
    return GenomeFile(genome_from_dict(data), float(smoothing))


class _PlainLoader(yaml.SafeLoader):
    """YAML without anchors and aliases: a genome never repeats itself, and nested aliases (a
    "billion laughs") make a 1 kB file expand exponentially in everything that walks it."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, "anchors and aliases (*name) are not allowed in a genome file", event.start_mark
            )
        return super().compose_node(parent, index)


def safe_yaml(text: str) -> Any:
    """``yaml.safe_load`` that refuses aliases (see :class:`_PlainLoader`)."""
    return yaml.load(text, Loader=_PlainLoader)


def save_genome_file(genome: Genome, path: str | Path) -> Path:
    path = Path(path)
    data = genome.to_dict()
    if path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
