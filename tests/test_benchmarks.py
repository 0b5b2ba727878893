"""Every benchmark still starts and finishes: each runs in its quick mode (tiny sizes, seconds) and
prints the line its ratio or rate is read from. The full runs, whose figures docs/guide.md quotes, stay
out of the tests (they are measurements, on a quiet machine)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, script_env

BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
# What each benchmark prints when it ran to the end.
PRINTS = {
    "bench_augment": r"all +data\+augmentation .* \(target <= 10%\)",
    "bench_driver": r"ratio overhead / 50 ms target: \d",
    "bench_executors": r"ratio inline / local, candidates only: \d",
    "bench_gpu_resnet9": r"full stack: 1 epochs .* images/s",
    "bench_losses": r"integrity: [\d,]+ checks/s",
    "bench_population": r"augmentation paper surrogate .* ratio \d",
    "bench_surrogate": r"full stack / hand-written: \d\.\d+ \(ratio of medians\)",
}


def test_every_benchmark_has_a_quick_check() -> None:
    assert len(BENCHMARKS) >= 7
    assert {p.stem for p in BENCHMARKS} == set(PRINTS)


@pytest.mark.slow
@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.stem)
def test_every_benchmark_runs_in_its_quick_mode(path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(path), "--quick"],
        cwd=ROOT,
        env=script_env(NO_ALBUMENTATIONS_UPDATE="1"),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(PRINTS[path.stem], result.stdout), result.stdout[-3000:]
