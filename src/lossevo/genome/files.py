"""Reading and writing genome files (JSON or YAML), with one clear error for a bad file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from lossevo.errors import GenomeError
from lossevo.genome.base import Genome, genome_from_dict


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
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise GenomeError(
            f"{str(path)!r} is a binary file, not a genome file (JSON or YAML text, e.g. "
            "<run>/conf/loss/best_1.yaml)"
        ) from None
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0]
        raise GenomeError(f"genome file {str(path)!r} is not valid JSON/YAML: {first}") from None
    if isinstance(data, dict) and "genome" in data:
        data = data["genome"]
    try:
        return genome_from_dict(data)
    except GenomeError as err:
        raise GenomeError(f"genome file {str(path)!r}: {err}") from None


def save_genome_file(genome: Genome, path: str | Path) -> Path:
    path = Path(path)
    data = genome.to_dict()
    if path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2) + "\n")
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
