"""What one training, or one candidate's evaluation, reports: the typed result every module shares.

This module sits at the bottom of the import graph (it imports nothing of lossevo's), so the
surrogate, the executors, the journals, the driver and the analyses all speak the same
:class:`Fitness`, :class:`Status` and :class:`StopReason`. Adding a field touches this file only.
The enums are ``str`` subclasses: they compare equal to, and are stored in SQLite as, their values.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any


class Status(str, Enum):
    """Where a candidate (or one training) stands."""

    PENDING = "pending"  # asked, not started
    RUNNING = "running"  # handed to an executor
    DONE = "done"  # trained: it has a fitness
    FAILED = "failed"  # no fitness: see the stop reason

    def __str__(self) -> str:
        return self.value


FINISHED = (Status.DONE, Status.FAILED)
UNFINISHED = (Status.PENDING, Status.RUNNING)


class StopReason(str, Enum):
    """Why a training ended."""

    COMPLETED = "completed"  # every step trained
    EARLY_STOP = "early_stop"  # stopped below the early-stop rule; keeps its best validation accuracy
    PRECHECK = "precheck"  # rejected by the pre-check rule (fails)
    NONFINITE = "nonfinite"  # the loss turned NaN/inf (fails)
    ERROR = "error"  # an exception while building or training (fails; retried by the driver)
    WORKER = "worker"  # the evaluating process died (fails; retried by the driver)

    def __str__(self) -> str:
        return self.value


@dataclass
class Fitness:
    """The result of one training, or of a candidate's trainings combined by its objective."""

    status: Status
    fitness: float | None  # best validation accuracy (or the objective's combination); None: failed
    stop_reason: StopReason
    detail: str = ""
    steps: int = 0
    seconds: float = 0.0
    train_acc: float | None = None
    history: list[tuple[int, float]] = field(default_factory=list)
    test_acc: float | None = None
    parts: list[float] | None = None  # per-setting accuracy, mean over runs (lossevo.execution.objectives)
    per_run: list[float] | None = None  # per-run accuracy, mean over settings (lossevo.execution.objectives)
    # Which test images it classified right, in the test split's order, bits packed (pack_hits);
    # one training's only (the verdict's two-level bootstrap over runs and images reads them).
    test_hits: str | None = None

    def __post_init__(self) -> None:
        self.status = Status(self.status)
        self.stop_reason = StopReason(self.stop_reason)

    @classmethod
    def failure(cls, reason: StopReason | str, detail: str, seconds: float = 0.0, steps: int = 0) -> Fitness:
        return cls(Status.FAILED, None, StopReason(reason), detail, steps=steps, seconds=seconds)

    @property
    def ok(self) -> bool:
        return self.status == Status.DONE

    def with_changes(self, **changes: Any) -> Fitness:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (enums as their values), e.g. for ``result.yaml``."""
        data = asdict(self)
        data["status"] = self.status.value
        data["stop_reason"] = self.stop_reason.value
        data["history"] = [list(h) for h in self.history]
        return data


def pack_hits(hits: Any) -> str:
    """Per-image correctness (an array-like of bools) as text: ``<images>:<the bits packed into
    bytes, base64>`` (10,000 images: about 1,670 characters)."""
    import numpy as np

    bits = np.asarray(hits, dtype=bool).reshape(-1)
    return f"{len(bits)}:" + base64.b64encode(np.packbits(bits).tobytes()).decode("ascii")


def unpack_hits(text: str) -> Any:
    """The boolean array :func:`pack_hits` packed."""
    import numpy as np

    count, _, packed = text.partition(":")
    bits = np.unpackbits(np.frombuffer(base64.b64decode(packed), dtype=np.uint8))
    return bits[: int(count)].astype(bool)
