"""lossevo from Python: the documented example end to end, and the API resuming like the CLI."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import lossevo
from lossevo.errors import LossevoError
from lossevo.losses import load_loss_file

from .conftest import ROOT, TINY, script_env

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "docs" / "examples" / "python_api" / "search_from_python.py"


def test_the_documented_example_runs_end_to_end(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), str(run_dir)],
        cwd=tmp_path,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = {line.split(":", 1)[0]: line for line in done.stdout.splitlines() if ":" in line}
    assert "best_1" in lines["verdict"] and "best_1" in lines["with 3 runs"]
    assert "best_1.yaml" in lines["best losses"] and "best_1 on a random batch" in lines
    assert lines["standalone"].endswith("export/best_1.py")
    assert lines["refused"] == "refused: validate.alpha=2 is out of range: it must be a number in (0, 0.5)"
    assert (run_dir / "retrain" / "results.csv").is_file()
    assert (run_dir / ".hydra" / "overrides.yaml").is_file(), "so that validate.py takes the folder too"
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        runs = db.execute("SELECT loss, COUNT(*) FROM validation GROUP BY loss ORDER BY loss").fetchall()
    assert [n for _, n in runs] == [3, 3], "validate(runs=3) added one run per loss"
    assert not (run_dir / "refused" / "journal.sqlite").exists(), "refused before anything was recorded"


def test_evolve_returns_its_losses_and_resumes_like_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    search = [
        *TINY,
        "search.budget=3",
        "search.initial_population=3",
        "search.fidelity.rungs=null",
        "validate.runs=0",
    ]
    result = lossevo.evolve(search, run_dir=tmp_path)
    assert capsys.readouterr().out == "", "the API returns results and prints nothing (the CLI prints)"
    assert result.verdict is None and result.sentence is None and result.run_dir == tmp_path
    losses = result.losses()
    assert losses and len(losses) == len(result.loss_files)
    logits, target = torch.randn(6, 10, dtype=torch.float64), torch.randint(0, 10, (6,))
    assert torch.equal(losses[0](logits, target), load_loss_file(result.loss_files[0])(logits, target))
    namespace: dict = {}  # its standalone file computes the same loss
    exec(result.standalone_files[0].read_text(), namespace)
    assert torch.equal(namespace["Best1Loss"]()(logits, target), losses[0](logits, target))
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        before = db.execute("SELECT id, status, fitness, finished_at FROM candidates ORDER BY id").fetchall()
    again = lossevo.evolve(search, run_dir=tmp_path)
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        after = db.execute("SELECT id, status, fitness, finished_at FROM candidates ORDER BY id").fetchall()
    assert after == before and again.outcome.best[0].id == result.outcome.best[0].id, "nothing trained again"
    with pytest.raises(LossevoError, match=r"surrogate\.steps: 60 -> 2"):
        lossevo.evolve([*search, "surrogate.steps=2"], run_dir=tmp_path)
    with pytest.raises(LossevoError, match="evolve: "):
        lossevo.evolve(["dataset=nonexistent"], run_dir=tmp_path / "other")
