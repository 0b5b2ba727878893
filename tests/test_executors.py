"""Executors: local worker processes and a real local Ray instance, including a worker that dies
mid-evaluation (the candidate is re-run, nothing is lost)."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .conftest import ROOT, TINY, script_command, script_env

pytestmark = pytest.mark.slow

SEARCH = [
    *TINY,
    "search.budget=6",
    "search.initial_population=3",
    "search.population_size=2",
    "search.tournament_size=2",
    "surrogate.steps=300",
    "surrogate.val_every=100",
    "validate.runs=0",
]


def rows(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "journal.sqlite", timeout=10) as db:
        return db.execute("SELECT id, status, attempts, stop_reason FROM candidates ORDER BY id").fetchall()


def running(run_dir: Path) -> int:
    try:
        return sum(1 for r in rows(run_dir) if r[1] == "running")
    except sqlite3.OperationalError:
        return 0


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    children = [int(p) for p in out]
    return children + [d for c in children for d in descendants(c)]


def kill_one_worker_when_busy(proc: subprocess.Popen, run_dir: Path, match: str) -> bool:
    """SIGKILL one evaluating worker process (its command line contains ``match``)."""
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if running(run_dir):
            time.sleep(1.0)  # inside the training, not at its start
            for pid in descendants(proc.pid):
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                except OSError:
                    continue
                if match in cmdline:
                    os.kill(pid, signal.SIGKILL)
                    return True
        time.sleep(0.1)
    return False


def kill_until_an_evaluation_fails(
    proc: subprocess.Popen, run_dir: Path, match: str, output: list[str]
) -> bool:
    """Kill busy-looking workers until the driver reports an evaluation lost to a dead worker (a
    worker can finish its short training between the look and the kill)."""
    for _ in range(5):
        if not kill_one_worker_when_busy(proc, run_dir, match):
            return False
        deadline = time.time() + 30
        while time.time() < deadline and proc.poll() is None:
            if "failed (worker" in "".join(output):
                return True
            time.sleep(0.2)
    return "failed (worker" in "".join(output)


@pytest.mark.parametrize(
    ("executor", "match"),
    [
        (["executor=local", "executor.workers=2"], "spawn_main"),
        (["executor=ray", "executor.workers=2"], "ray::evaluate_with_threads"),
        # Every job starts a fresh Python (as on a cluster): one rung keeps it short.
        (
            [
                "executor=slurm",
                "executor.cluster=local",
                "executor.workers=2",
                "executor.cpus_per_task=1",
                "executor.poll_s=0.2",
                "search.fidelity.rungs=[300]",
            ],
            "submitit.core._submit",
        ),
    ],
    ids=["local", "ray", "slurm-local"],
)
def test_a_killed_worker_loses_nothing(executor: list[str], match: str, tmp_path: Path) -> None:
    if executor[0] == "executor=ray":
        pytest.importorskip("ray")
    if executor[0] == "executor=slurm":
        pytest.importorskip("submitit")
    run_dir = tmp_path / "run"
    proc = subprocess.Popen(
        script_command("evolve.py", *SEARCH, *executor, f"hydra.run.dir={run_dir}"),
        cwd=ROOT,
        env=script_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)  # type: ignore[arg-type]
    reader.start()
    killed = kill_until_an_evaluation_fails(proc, run_dir, match, output)
    assert proc.wait(timeout=600) == 0, "".join(output)[-3000:]
    assert killed, "a worker was running an evaluation and was killed"
    final = rows(run_dir)
    assert [r[0] for r in final] == list(range(1, 7)), "no candidate lost, none duplicated"
    assert all(r[1] in ("done", "failed") for r in final)
    # The killed worker trained a candidate or the reference loss (a task like any other).
    log = "".join(output)
    for name in set(re.findall(r"(candidate \d+|reference \S+(?: at rung \d+)?) failed \(worker", log)):
        if name.startswith("candidate"):
            (row,) = [r for r in final if r[0] == int(name.split()[1])]
            assert row[2] > 1 and row[3] != "worker", f"{name} ran again and finished normally: {row}"
        else:
            rung = int(name.rsplit(" ", 1)[1]) if " at rung " in name else 0
            with sqlite3.connect(run_dir / "journal.sqlite") as db:
                (status,) = db.execute(
                    "SELECT status FROM reference WHERE name = ? AND rung = ?", (name.split()[1], rung)
                ).fetchone()
            assert status == "done", f"{name} ran again and finished"


def test_slurm_settings_reach_the_sbatch_script(tmp_path: Path) -> None:
    """executor=slurm's keys become the #SBATCH lines of every job (submitit writes the script)."""
    pytest.importorskip("submitit")
    from lossevo.config import compose_config
    from lossevo.execution.executors import sbatch_script, slurm_parameters

    overrides = [
        "executor=slurm",
        "executor.partition=gpu",
        "executor.account=lab42",
        "executor.gpus_per_node=1",
        "executor.timeout_min=30",
        "executor.mem_gb=16",
        "executor.setup=[module load cuda]",
        "+executor.additional_parameters.mail_type=FAIL",
    ]
    cfg = compose_config("evolve", overrides)
    node = cfg.executor
    keys = (
        "partition",
        "account",
        "qos",
        "constraint",
        "timeout_min",
        "gpus_per_node",
        "cpus_per_task",
        "mem_gb",
        "setup",
        "additional_parameters",
    )
    script = sbatch_script(tmp_path, slurm_parameters(*(node[k] for k in keys)))
    for line in (
        "#SBATCH --partition=gpu",
        "#SBATCH --account=lab42",
        "#SBATCH --gpus-per-node=1",
        "#SBATCH --time=30",
        "#SBATCH --mem=16GB",
        "#SBATCH --cpus-per-task=4",
        "#SBATCH --mail-type=FAIL",
        "module load cuda",
    ):
        assert line in script, f"{line!r} in\n{script}"


def test_slurm_without_sbatch_says_what_to_do(tmp_path: Path) -> None:
    import shutil

    if shutil.which("sbatch"):
        pytest.skip("this machine has SLURM")
    result = subprocess.run(
        script_command("evolve.py", *SEARCH, "executor=slurm", f"hydra.run.dir={tmp_path}"),
        cwd=ROOT,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert "no `sbatch` here" in result.stderr and "executor.cluster=local" in result.stderr


def test_more_workers_or_threads_than_cores_are_capped_with_a_line(caplog: pytest.LogCaptureFixture) -> None:
    """#27.7: executor.workers=12 on a 2-core machine would thrash it: capped to the cores, said once."""
    import logging

    import torch

    from lossevo.execution.executors import LocalExecutor
    from lossevo.machine import cpu_cores

    if torch.cuda.device_count():
        pytest.skip("on a GPU machine the workers are one per GPU")
    cores = cpu_cores()
    with caplog.at_level(logging.WARNING):
        executor = LocalExecutor(workers=cores + 10, threads=cores + 5)
    try:
        assert executor.capacity == 1  # threads capped to the cores: one worker fits
        assert f"exceeds this machine's {cores} cores" in caplog.text
    finally:
        executor.close()
    from lossevo.training.surrogate import _capped_threads

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert _capped_threads(1000) == cores  # trainer.threads=1000
    assert f"trainer.threads=1000 exceeds this machine's {cores} cores" in caplog.text
