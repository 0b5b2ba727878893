"""`correlate.py` end to end on digits: a real study journal, resumable, with its files."""

from __future__ import annotations

import csv
import math
import sqlite3
from pathlib import Path

import pytest

from lossevo.cli.commands import run_correlate

from .conftest import TINY, compose_config, run_script

pytestmark = pytest.mark.slow

STUDY = [
    *[o for o in TINY if not o.startswith("surrogate.steps") and not o.startswith("surrogate.val_every")],
    "surrogate.steps=20",
    "surrogate.val_every=10",
    "losses.random=5",
    "losses.names=[cross_entropy]",
    "top_k=3",
    "clusters=2",
]


def test_study_writes_tables_and_figures_and_resumes_cell_by_cell(tmp_path: Path) -> None:
    overrides = [*STUDY, "settings=[base,'cutout: augment=cutout']"]
    files = run_correlate(compose_config("correlate", overrides), run_dir=tmp_path, overrides=overrides)
    db = sqlite3.connect(tmp_path / "study.sqlite")
    assert db.execute("SELECT COUNT(*) FROM losses").fetchone()[0] == 6
    assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 12
    first = db.execute("SELECT loss_id, setting, fitness, finished_at FROM results ORDER BY 1, 2").fetchall()
    with open(files["accuracy"]) as fh:
        rows = list(csv.DictReader(fh))
    assert (
        len(rows) == 6
        and rows[0]["name"] == "cross_entropy"
        and set(rows[0]) >= {"base", "cutout", "cluster"}
    )
    with open(files["kendall"]) as fh:
        (pair,) = list(csv.DictReader(fh))
    n, tau = int(pair["n"]), float(pair["tau"])
    assert pair["setting_a"] == "base" and n >= 2
    assert -1 <= tau <= 1 if n >= 5 else math.isnan(tau), "no τ over fewer than five losses"
    report = files["report"].read_text()
    assert "Kendall τ" in report and "| base |" in report
    assert files["heatmap"].stat().st_size > 1000 and files["scatter"].stat().st_size > 1000

    # Adding a setting trains only its cells; the recorded ones are kept as they were.
    overrides = [*STUDY, "settings=[base,'cutout: augment=cutout',mixup]", "target=cutout", "threshold=-1"]
    files = run_correlate(compose_config("correlate", overrides), run_dir=tmp_path, overrides=overrides)
    again = db.execute(
        "SELECT loss_id, setting, fitness, finished_at FROM results WHERE setting != 'mixup' ORDER BY 1, 2"
    ).fetchall()
    assert again == first and db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 18
    report = files["report"].read_text()
    assert "Surrogate calibration against `cutout`" in report
    if n >= 5:  # threshold -1: any τ over enough losses clears it
        assert "Recommended surrogate:" in report


def test_other_losses_in_the_same_folder_are_refused(tmp_path: Path) -> None:
    first = [*STUDY, "losses.random=2", "settings=[base]"]
    run_correlate(compose_config("correlate", first), run_dir=tmp_path, overrides=first)
    result = run_script(
        "correlate.py", *STUDY, "losses.random=3", "settings=[base]", f"hydra.run.dir={tmp_path}"
    )
    assert (
        result.returncode == 2
        and "holds a study with other settings (losses.random: 2 -> 3)" in result.stderr
    )
