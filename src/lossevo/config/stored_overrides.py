"""A run folder's saved command line (``.hydra/overrides.yaml``), read back as data.

``validate.py run=<folder>`` recomposes a search from the overrides its folder saved. A folder can
come from someone else, so what it saved may only choose options and set values: an override that
names a ``_target_`` (or another instantiate key), holds an interpolation ``${...}``, changes
Hydra itself (its search path or callbacks) or gives shell lines to an executor would run code or
read the environment, and is refused unless the user repeats it in ``overrides=[...]``.
"""

from __future__ import annotations

import re
from pathlib import Path

from lossevo.errors import LossevoError
from lossevo.genome.files import safe_yaml

MAX_OVERRIDES = 500
MAX_LENGTH = 4000
_INSTANTIATE_KEYS = ("_target_", "_args_", "_partial_", "_recursive_", "_convert_")
_SHELL_KEYS = ("executor.setup", "executor.additional_parameters")
_KEY = re.compile(r"^[~+]*([^=]*)=?")


def read_stored_overrides(folder: Path, trusted: list[str]) -> list[str]:
    """The overrides ``folder/.hydra/overrides.yaml`` saved; those that could run code are refused
    unless they are in ``trusted`` (the user's own ``overrides=[...]``)."""
    saved = folder / ".hydra" / "overrides.yaml"
    where = f"{saved}"
    fix = "restore it, or re-run the search's own command with hydra.run.dir and validate.runs=N"
    try:
        data = safe_yaml(saved.read_text()) if saved.stat().st_size <= MAX_OVERRIDES * MAX_LENGTH else None
    except Exception as err:  # unreadable, not YAML, or holding aliases
        raise LossevoError(f"{where} cannot be read ({str(err).splitlines()[0][:120]}): {fix}") from None
    if data is None:
        data = []
    if not isinstance(data, list) or len(data) > MAX_OVERRIDES or not all(isinstance(o, str) for o in data):
        raise LossevoError(f"{where} is not a list of at most {MAX_OVERRIDES} overrides (strings): {fix}")
    refused = [o for o in data if o not in trusted and unsafe(o)]
    if refused:
        shown = ", ".join(repr(o[:80]) for o in refused[:3])
        raise LossevoError(
            f"{where} holds {shown}, which would run code or read the environment (an instantiate key, "
            "an interpolation, a hydra setting or executor shell lines); nothing was run. If you trust "
            f"this folder, repeat it yourself: validate.py run={folder} 'overrides=[...]'"
        )
    return list(data)


def unsafe(override: str) -> str | None:
    """Why an override read from a file could run code, or None."""
    if len(override) > MAX_LENGTH or "\x00" in override:
        return "too long"
    if "${" in override:
        return "an interpolation"
    if any(part in override for part in _INSTANTIATE_KEYS):  # as a key, or inside a dict value
        return "an instantiate key"
    match = _KEY.match(override)
    key = match.group(1).strip() if match else override
    if key == "hydra" or key.startswith(("hydra.", "hydra/")):
        return "a hydra setting"
    if key.startswith(_SHELL_KEYS):
        return "executor shell lines"
    return None
