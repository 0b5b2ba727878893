"""User-facing errors: one clear message naming the problem and the fix, no stack trace."""

from __future__ import annotations


class LossevoError(Exception):
    """A problem the user can fix (bad input, missing data, bad configuration).

    Entry scripts print ``error: <message>`` and exit with status 2 instead of a traceback.
    """


class GenomeError(LossevoError, ValueError):
    """A genome that cannot be read or is structurally invalid (unknown op, arity, cycle...)."""
