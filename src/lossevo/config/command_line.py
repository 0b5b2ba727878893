"""The command line checked before Hydra reads it: overrides Hydra itself would answer with a
traceback (a config group set to null, a ``_target_`` deleted) get one line naming the fix."""

from __future__ import annotations

import re
from importlib.resources import files

from lossevo.errors import LossevoError


def groups() -> list[str]:
    """lossevo's config groups (the folders of conf/)."""
    root = files("lossevo.conf")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "hydra")))


def check_command_line(args: list[str]) -> None:
    """Refuse ``group=null`` and ``~<node>._target_`` among ``args`` (Hydra's overrides)."""
    known = set(groups())
    for arg in args:
        if arg.startswith("-") or ("=" not in arg and not arg.startswith("~")):
            continue
        key, _, value = arg.lstrip("+~").partition("=")
        if arg.startswith("~") and key.endswith("_target_"):
            node = key.removesuffix("._target_").removesuffix("_target_") or "the config"
            raise LossevoError(
                f"{arg} removes what builds {node}: choose another option instead "
                f"({node}=<option>), or give your own with --config-dir"
            )
        if key in known and value.strip() in ("null", "~", "", "None"):
            raise LossevoError(
                f"{arg}: the {key} group needs an option, e.g. {key}=<name of a file in "
                f"conf/{key}/> (`--help` lists them)"
            )


def override_value(value: str, what: str) -> str:
    """``value`` (a path, a name) as one quoted Hydra override value: commas, spaces, quotes and
    brackets stay part of it. A newline, a NUL or ``${`` cannot be passed through Hydra as data
    (OmegaConf would interpolate it) and is refused."""
    if any(c in value for c in "\n\r\x00") or "${" in value:
        raise LossevoError(
            f"{what} {value!r} holds a newline, a NUL or '${{', which a Hydra override cannot "
            "pass as text: rename or move it"
        )
    escaped = re.sub(r"(\\+)(?='|$)", lambda m: m.group(1) * 2, value).replace("'", "\\'")
    return f"'{escaped}'"


def overrides_list(overrides: object, what: str = "overrides") -> list[str]:
    """The Python API's overrides: a list of strings, checked as the command line is."""
    if isinstance(overrides, str) or not isinstance(overrides, list | tuple):
        raise LossevoError(f"{what} must be a list of strings such as ['dataset=digits'], got {overrides!r}")
    for i, item in enumerate(overrides):
        if not isinstance(item, str):
            raise LossevoError(
                f"{what}[{i}] is {item!r}: each override is a string such as 'loss=cross_entropy'"
            )
    check_command_line(list(overrides))
    return list(overrides)
