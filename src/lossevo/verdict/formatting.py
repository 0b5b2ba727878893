"""How the verdict's numbers are written: points, p-values, mean ± std, and NaN as "not measured"."""

from __future__ import annotations

import math

from lossevo.verdict.rows import LossRow


def num(value: float | None) -> float | None:
    """A number for tables and metadata, with NaN (not measured) as None."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def pstr(p: float | None) -> str:
    """A p-value to two significant digits, ``n/a`` when not measured."""
    return "n/a" if p is None or math.isnan(p) else f"{p:.2g}"


def points(value: float) -> str:
    """A difference of accuracies in percentage points."""
    return "n/a" if math.isnan(value) else f"{100 * value:.2f}"


def signed_points(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:+.2f}"


def decimals(value: float | None, digits: int = 4) -> str:
    """A table cell: ``value`` to ``digits`` decimals, empty when not measured."""
    return "" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def mean_std(row: LossRow, which: str = "test") -> str:
    """``0.812 ± 0.004`` over a row's finished runs (no spread from one run)."""
    if not row.finished:
        return "no finished run"
    mean, std = (row.test_mean, row.test_std) if which == "test" else (row.val_mean, row.val_std)
    return f"{mean:.3f}" + (f" ± {std:.3f}" if row.finished > 1 else "")


def finished(row: LossRow) -> str:
    text = f"{row.finished}/{row.runs}"
    return text + (f" ({row.failed} failed)" if row.failed else "")
