"""The same search with ``executor=inline`` and ``executor=local`` (N CPU workers, 1 thread each).

Each run is the real command line (``python evolve.py ...``) in a fresh folder: the default
Fashion-MNIST ConvNet surrogate and regularized evolution, ``--budget`` candidates, one fidelity
rung and no verdict (the search loop alone; ``--extra`` adds overrides). Inline uses torch's
default threads (all cores) in one process; local splits the cores into single-threaded worker
processes. Prints both wall times, the time from the first finished training to the last (the
reference loss runs on the executor too) and the ratio inline / local (> 1: local is faster).

    python benchmarks/bench_executors.py [--budget 16] [--workers 2] [--extra key=value ...] [--quick]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(executor: list[str], budget: int, extra: list[str], folder: Path) -> tuple[float, float, int]:
    command = [
        sys.executable,
        str(ROOT / "evolve.py"),
        f"search.budget={budget}",
        "logger=none",
        "search.fidelity.rungs=null",
        "validate.runs=0",
        f"hydra.run.dir={folder}",
        *executor,
        *extra,
    ]
    env = {**os.environ, "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    db = sqlite3.connect(folder / "journal.sqlite")
    (reference_done,) = db.execute("SELECT MIN(finished_at) FROM reference").fetchone()
    (last_done,) = db.execute("SELECT MAX(finished_at) FROM candidates").fetchone()
    (done,) = db.execute("SELECT COUNT(*) FROM candidates WHERE status IN ('done','failed')").fetchone()
    return wall, last_done - reference_done, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--extra", nargs="*", default=[])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds: checks the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.budget = 3
        args.extra = [
            *args.extra,
            "dataset=digits",
            "surrogate.steps=20",
            "surrogate.val_every=10",
            "surrogate.precheck.step=null",
            "surrogate.early_stop.step=null",
            "search.initial_population=2",
        ]
    with tempfile.TemporaryDirectory() as tmp:
        inline = run(["executor=inline"], args.budget, args.extra, Path(tmp) / "inline")
        local = run(
            ["executor=local", f"executor.workers={args.workers}", "executor.threads=1"],
            args.budget,
            args.extra,
            Path(tmp) / "local",
        )
    for name, (wall, candidates, done) in (("inline", inline), (f"local x{args.workers}", local)):
        print(f"{name:10s} wall {wall:7.1f}s  candidates {candidates:7.1f}s  ({done} evaluated)")
    print(f"ratio inline / local, wall: {inline[0] / local[0]:.3f}")
    print(f"ratio inline / local, candidates only: {inline[1] / local[1]:.3f}")


if __name__ == "__main__":
    main()
