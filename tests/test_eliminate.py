"""The elimination protocol on digits: stages, keep-counts, averaging, resume, files."""

from __future__ import annotations

import csv
import itertools
import sqlite3
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lossevo.analysis.elimination import parse_stages
from lossevo.cli.commands import run_eliminate
from lossevo.errors import LossevoError

from .conftest import TINY, compose_config

STAGES = (
    "stages=[{name: a, overrides: 'surrogate.steps=10 surrogate.val_every=10', keep: 3},"
    "{name: b, overrides: 'surrogate.steps=20', keep: 2},"
    "{name: c, overrides: 'surrogate.steps=30', keep: null, runs: 2}]"
)
BASE = [o for o in TINY if not o.startswith(("surrogate.steps", "surrogate.val_every"))]


def test_stages_are_checked() -> None:
    stages = parse_stages(OmegaConf.create([{"name": "x", "overrides": "a=1 b=2", "keep": 2}]))
    assert stages[0].overrides == ["a=1", "b=2"] and stages[0].runs == 1
    with pytest.raises(LossevoError, match="must be >= 1"):
        parse_stages(OmegaConf.create([{"name": "x", "keep": 0}]))
    with pytest.raises(LossevoError, match="names must differ"):
        parse_stages(OmegaConf.create([{"name": "x"}, {"name": "x"}]))


@pytest.mark.slow
def test_each_stage_trains_only_the_survivors_and_resumes(tmp_path: Path) -> None:
    overrides = [*BASE, "surrogate.val_every=10", "losses.random=4", "losses.names=[cross_entropy]", STAGES]
    results = run_eliminate(compose_config("eliminate", overrides), run_dir=tmp_path, overrides=overrides)
    assert [len(r.entrants) for r in results] == [5, 3, 2]
    for earlier, later in itertools.pairwise(results):
        assert later.entrants == earlier.survivors
        cut = sorted((earlier.scores[s.id] for s in earlier.entrants), reverse=True)[earlier.stage.keep - 1]
        assert all(earlier.scores[s.id] >= cut for s in later.entrants), (
            "the best `keep` go on (ties either way)"
        )
    db = sqlite3.connect(tmp_path / "study.sqlite")
    counts = dict(db.execute("SELECT setting, COUNT(*) FROM results GROUP BY setting").fetchall())
    assert counts == {"a": 5, "b": 3, "c": 4}  # the last stage trains its two losses twice
    with open(tmp_path / "elimination.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["final_rank"] for r in rows[:2]] == ["1", "2"] and rows[0]["last_stage"] == "c"
    assert "| 1 |" in (tmp_path / "elimination.md").read_text()

    before = db.execute("SELECT * FROM results ORDER BY 1, 2, 3").fetchall()
    again = run_eliminate(compose_config("eliminate", overrides), run_dir=tmp_path, overrides=overrides)
    assert db.execute("SELECT * FROM results ORDER BY 1, 2, 3").fetchall() == before  # nothing retrained
    assert [s.id for s in again[-1].survivors] == [s.id for s in results[-1].survivors]


@pytest.mark.slow
def test_average_previous_ranks_by_the_mean_over_stages(tmp_path: Path) -> None:
    overrides = [*BASE, "surrogate.val_every=10", "losses.random=3", STAGES, "average_previous=true"]
    results = run_eliminate(compose_config("eliminate", overrides), run_dir=tmp_path, overrides=overrides)
    db = sqlite3.connect(tmp_path / "study.sqlite")
    for loss in results[1].entrants:
        query = "SELECT fitness FROM results WHERE loss_id = ? AND setting IN ('a', 'b')"
        values = [v for (v,) in db.execute(query, (loss.id,))]
        assert results[1].scores[loss.id] == pytest.approx(sum(values) / len(values))
