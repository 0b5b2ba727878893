"""Multi-fidelity promotion (ASHA): the rule on known rungs, a tiny real search, and resume."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from lossevo.config.settings import FidelitySettings
from lossevo.errors import LossevoError
from lossevo.results import Status
from lossevo.search.fidelity import Fidelity
from lossevo.store.journal import RungRow

from .conftest import ROOT, TINY, run_script, script_command, script_env

LADDER = Fidelity(steps=[100, 400, 1600], runs=[1, 1, 1], eta=3, single=False, base_steps=100)


def row(candidate: int, rung: int, fitness: float | None, status: Status = Status.DONE) -> RungRow:
    if fitness is None and status == Status.DONE:
        status = Status.FAILED
    return RungRow(
        status=status,
        fitness=fitness,
        stop_reason=None,
        detail=None,
        steps=None,
        seconds=None,
        candidate_id=candidate,
        rung=rung,
        mean=fitness,
        std=None,
        runs=None,
        attempts=0,
        created_at=0.0,
        finished_at=None,
    )


def test_promotion_takes_the_top_third_of_each_rung_so_far() -> None:
    rungs = [row(1, 0, 0.5), row(2, 0, 0.7)]
    assert LADDER.promotion(rungs) is None, "two results: floor(2/3) = 0 promotable"
    rungs.append(row(3, 0, 0.6))
    assert LADDER.promotion(rungs) == (2, 1), "three results: the best is promoted"
    rungs.append(row(2, 1, None, Status.PENDING))
    assert LADDER.promotion(rungs) is None, "promoted once"
    rungs += [row(4, 0, None), row(5, 0, 0.9), row(6, 0, 0.1)]
    assert LADDER.promotion(rungs) == (5, 1), "failures count in n and rank last"
    rungs += [row(5, 1, 0.95), row(7, 0, 0.65), row(8, 0, 0.66), row(9, 0, 0.67)]
    assert LADDER.promotion(rungs) == (9, 1), "the third best of nine is promotable now"


def test_promotion_prefers_the_highest_rung() -> None:
    rungs = [row(i, 0, 0.1 * i) for i in range(1, 10)]
    rungs += [row(9, 1, 0.90), row(8, 1, 0.80), row(7, 1, 0.70)]
    assert LADDER.promotion(rungs) == (9, 2)
    rungs.append(row(9, 2, 0.95))
    assert LADDER.promotion(rungs) is None, "rung 0's top third (7, 8, 9) is all promoted"


def test_a_prescreen_ranks_within_its_own_group() -> None:
    rungs = [row(1, 0, 0.2), row(2, 0, 0.3), row(3, 0, 0.25), row(4, 0, 0.9), row(5, 0, 0.8), row(6, 0, 0.7)]
    group = {1: "prescreen", 2: "prescreen", 3: "prescreen", 4: "", 5: "", 6: ""}
    picked = set()
    while (p := LADDER.promotion(rungs, group)) is not None:
        picked.add(p[0])
        rungs.append(row(p[0], 1, None, Status.PENDING))
    assert picked == {2, 4}, "the best of each group of three, not the top two of all six"


def test_the_ladder_is_checked() -> None:
    single = Fidelity.from_settings(FidelitySettings(rungs=None, eta=3, runs=None), 300)
    assert single.single and single.steps == [300] and single.overrides(0) == []
    ladder = Fidelity.from_settings(FidelitySettings(rungs=[300, 1200], eta=3, runs=[1, 3]), 300)
    assert ladder.overrides(0) == [] and ladder.overrides(1) == ["surrogate.steps=1200"]
    with pytest.raises(LossevoError, match="increasing"):
        Fidelity.from_settings(FidelitySettings(rungs=[300, 300], eta=3, runs=None), 300)
    with pytest.raises(LossevoError, match="one per rung"):
        Fidelity.from_settings(FidelitySettings(rungs=[300, 1200], eta=3, runs=[1]), 300)
    with pytest.raises(LossevoError, match="eta must be > 1"):
        Fidelity.from_settings(FidelitySettings(rungs=[300, 1200], eta=1, runs=None), 300)


# ---------------------------------------------------------------------------- real searches
SEARCH = [
    *TINY,
    "search.budget=9",
    "search.initial_population=4",
    "search.population_size=3",
    "search.tournament_size=2",
    "surrogate.steps=40",
    "surrogate.val_every=20",
    "search.fidelity.rungs=[40,80,160]",
    "search.fidelity.runs=[1,1,2]",
    "validate.runs=2",
    "validate.top_k=2",
    "validate.baselines=[reference]",
]
EXACT = (
    "SELECT candidate_id, rung, status, fitness, mean, std, runs, stop_reason, steps FROM rungs "
    "ORDER BY rung, candidate_id"
)


def rungs(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "journal.sqlite", timeout=10) as db:
        return db.execute(EXACT).fetchall()


def count(run_dir: Path, sql: str) -> int:
    try:
        with sqlite3.connect(run_dir / "journal.sqlite", timeout=5) as db:
            return db.execute(sql).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.fixture(scope="module")
def ladder_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ladder")
    result = run_script("evolve.py", *SEARCH, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir / "stdout.txt").write_text(result.stdout)
    return run_dir


@pytest.mark.slow
def test_a_search_promotes_by_the_rule_and_trains_the_reference_at_every_rung(ladder_run: Path) -> None:
    rows = rungs(ladder_run)
    by_rung = {r: [x for x in rows if x[1] == r] for r in range(3)}
    assert len(by_rung[0]) == 9 and by_rung[1] and all(x[2] in ("done", "failed") for x in rows)
    for x in by_rung[1]:  # every promoted candidate was in its rung's top third when it went up
        done = sorted((y for y in by_rung[0] if y[3] is not None), key=lambda y: -y[3])
        assert x[0] in [y[0] for y in done[: len(by_rung[0]) // 3]]
    assert all(x[8] == 80 for x in by_rung[1] if x[2] == "done"), "rung 1 trains 80 steps, from scratch"
    for x in by_rung[2]:
        assert len(x[6].split(",")) == 2 and (x[5] is not None or x[2] == "failed"), "two runs at rung 2"
    with sqlite3.connect(ladder_run / "journal.sqlite") as db:
        reference = db.execute("SELECT rung, status, steps FROM reference ORDER BY rung").fetchall()
    assert [(r, s) for r, s, _ in reference] == [(0, "done"), (1, "done"), (2, "done")]
    assert reference[1][2] == 80 and reference[2][2] == 2 * 160, "the same budgets and runs as candidates"


@pytest.mark.slow
def test_resume_after_sigkill_mid_promotion_matches_an_uninterrupted_search(
    ladder_run: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "killed"
    kills = 0
    for sql in (
        "SELECT COUNT(*) FROM rungs WHERE rung = 1 AND status = 'running'",
        "SELECT COUNT(*) FROM rungs WHERE rung = 2 AND status = 'running'",
    ):
        command = script_command("evolve.py", *SEARCH, f"hydra.run.dir={run_dir}")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        proc = subprocess.Popen(command, cwd=ROOT, env=script_env(), **quiet)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None:
            if count(run_dir, sql):
                time.sleep(0.2)  # inside the promotion's training
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.02)
        proc.wait()
    assert kills == 2
    result = run_script("evolve.py", *SEARCH, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert rungs(run_dir) == rungs(ladder_run), "the same promotions, the same results"
    with (
        sqlite3.connect(run_dir / "journal.sqlite") as a,
        sqlite3.connect(ladder_run / "journal.sqlite") as b,
    ):
        query = "SELECT loss, run, seed, fitness FROM validation ORDER BY loss, run"
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
