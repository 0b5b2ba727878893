"""The search's names for its evaluations: a task's key says what its result is for.

Keys travel with their tasks to any executor and come back with the result; the driver matches
them (``match key: case CandidateKey(...)``) to know whether a result is a candidate's, at which
rung, or the reference loss's. The verdict's trainings have their own key
(:class:`lossevo.verdict.phase.ValidationKey`), a study's cells theirs
(:class:`lossevo.analysis.study.CellKey`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CandidateKey:
    """A candidate's trainings at one fidelity rung (0: the search's surrogate)."""

    candidate_id: int
    rung: int


@dataclass(frozen=True)
class ReferenceKey:
    """The reference loss trained like a candidate at ``rung`` (``name#k``: its k-th seed at rung 0,
    ``name@prescreen``: on the pre-screen)."""

    name: str
    rung: int
    seed: int
