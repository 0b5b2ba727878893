"""A search's best losses as one W&B artifact, and ``loss=wandb:<reference>`` to train one of them.

A search with W&B on logs an artifact of type ``loss`` named after its run folder's group
(``losses-<group>``): the ``best_<k>.yaml`` configs, their standalone files (``best_<k>.py``,
:mod:`lossevo.export`), ``verdict.md``, ``validation.csv`` and ``comparisons.csv``, with the
verdict's headline figures as metadata. Offline it is staged with the run and uploaded by
``wandb sync``. ``train.py loss=wandb:entity/project/losses-<group>:v0`` (``.../best_2`` for
another rank) downloads it and trains that loss as ``loss=file`` would, with the label
smoothing it was searched with.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lossevo.config.command_line import override_value
from lossevo.errors import LossevoError
from lossevo.genome.files import read_genome_file
from lossevo.tracking.tracker import Tracker, run_label

ARTIFACT_TYPE = "loss"
PREFIX = "wandb:"
_MEMBER = re.compile(r"best_\d+")


def artifact_name(label: str) -> str:
    """``losses-<label>`` (the run folder's :func:`~lossevo.tracking.tracker.run_label`), in the
    characters W&B allows in a name."""
    return "losses-" + re.sub(r"[^A-Za-z0-9_.-]", "-", label)


def log_losses(tracker: Tracker, run_dir: Path, files: list[Path], metadata: dict[str, Any]) -> None:
    """Log ``files`` (each under its own name) as the run folder's ``loss`` artifact."""
    tracker.artifact(
        artifact_name(run_label(run_dir)),
        ARTIFACT_TYPE,
        files,
        metadata,
        description=f"the best losses of the search in {run_dir}",
    )


def resolve_overrides(overrides: list[str]) -> list[str]:
    """``loss=wandb:<reference>[/best_<k>]`` replaced by the ``loss=file`` overrides of that loss,
    downloaded from W&B; every other override as it is."""
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if key.lstrip("+~") == "loss" and sep and value.startswith(PREFIX):
            out += loss_overrides(*_download(value[len(PREFIX) :]))
        else:
            out.append(item)
    return out


def split_reference(text: str) -> tuple[str, str]:
    """``entity/project/name:version[/best_k]`` -> (the artifact reference, the member)."""
    head, sep, tail = text.rpartition("/")
    if sep and _MEMBER.fullmatch(tail):
        return head, tail
    return text, "best_1"


def _download(text: str) -> tuple[Path, str]:
    reference, member = split_reference(text)
    if reference.count("/") != 2 or ":" not in reference.rpartition("/")[2]:
        raise LossevoError(
            f"loss=wandb:{text}: name an artifact as wandb:<entity>/<project>/<name>:<version> (e.g. "
            "wandb:me/lossevo/losses-run1:latest), with /best_2 for another of its losses"
        )
    try:
        import wandb

        artifact = wandb.Api().artifact(reference, type=ARTIFACT_TYPE)
        folder = Path(artifact.download())
    except Exception as err:  # no key, no network, no such artifact: one line that says what to do
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise LossevoError(
            f"loss=wandb:{text}: W&B could not give the artifact ({first}). Online with a key it is "
            f"downloaded here; elsewhere fetch it with `wandb artifact get {reference}` and pass "
            f"loss=file loss.path=<its folder>/{member}.yaml"
        ) from None
    return folder, member


def loss_overrides(folder: Path, member: str = "best_1") -> list[str]:
    """The overrides that train ``member`` of a downloaded artifact's ``folder``."""
    path = folder / f"{member}.yaml"
    if not path.is_file():
        have = sorted(p.stem for p in folder.glob("best_*.yaml"))
        has = ", ".join(have) or "no losses"
        raise LossevoError(f"the artifact in {folder} has no {member} (it has {has}): name one of them")
    smoothing = read_genome_file(path).label_smoothing  # read as data: nothing in it runs
    return [
        "loss=file",
        f"loss.path={override_value(str(path), 'the loss file')}",
        f"loss.label_smoothing={smoothing}",
    ]
