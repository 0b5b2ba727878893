"""Final-training statistics: train.py seeds=N, `lossevo stats`, `lossevo ttest`, `lossevo collate`."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ttest_ind

from lossevo.analysis import statistics as st
from lossevo.cli.main import main
from lossevo.errors import LossevoError

from .conftest import TINY, run_script


def fake_set(folder: Path, loss: str, setting: str, accs: list[float | None]) -> Path:
    """A results.csv in train.py's format (as it would be after len(accs) seeds)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        {
            "loss": loss,
            "setting": setting,
            "seed": i,
            "status": "failed" if a is None else "done",
            "val_acc": a,
            "test_acc": a,
            "steps": 10,
            "seconds": 1.0,
            "equation": loss,
        }
        for i, a in enumerate(accs)
    ]
    return st.write_results(folder / "results.csv", rows)


def test_summary_marks_the_best_and_tests_against_the_reference(tmp_path: Path) -> None:
    fake_set(tmp_path / "ce_base", "cross_entropy", "base", [0.90, 0.91, 0.89])
    fake_set(tmp_path / "a2_base", "a2", "base", [0.93, 0.94, 0.92, None])
    fake_set(tmp_path / "ce_mix", "cross_entropy", "mixup", [0.95, 0.94])
    fake_set(tmp_path / "a2_mix", "a2", "mixup", [0.90, 0.91])
    losses, settings, cells = st.summary(st.read_results([tmp_path]), "test_acc", "cross_entropy")
    assert losses == ["cross_entropy", "a2"] and settings == ["base", "mixup"]
    a2 = cells[("a2", "base")]
    assert a2.n == 3 and a2.mean == pytest.approx(0.93) and a2.std == pytest.approx(0.01) and a2.best
    expected = ttest_ind(
        [0.93, 0.94, 0.92], [0.90, 0.91, 0.89], equal_var=False, alternative="greater"
    ).pvalue
    assert a2.p == pytest.approx(expected) and a2.p < 0.05
    assert cells[("cross_entropy", "mixup")].best and cells[("a2", "mixup")].p > 0.5
    md = st.markdown_table(losses, settings, cells)
    assert "| a2 | **93.00 ± 1.00** (p=" in md
    assert r"\textbf{93.00 $\pm$ 1.00}" in st.latex_table(losses, settings, cells)


def test_commands_write_tables_and_refuse_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = fake_set(tmp_path / "a", "a2", "base", [0.93, 0.94, 0.92])
    b = fake_set(tmp_path / "b", "cross_entropy", "base", [0.90, 0.91, 0.89])
    assert main(["ttest", str(a), str(b)]) == 0
    assert "p (A > B) =" in capsys.readouterr().out
    assert main(["stats", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == {"stats.csv", "stats.md", "stats.tex"}
    assert main(["collate", str(tmp_path / "a"), str(tmp_path / "b"), "-o", str(tmp_path / "all.csv")]) == 0
    with open(tmp_path / "all.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 6
    assert main(["ttest", str(a), str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    one = fake_set(tmp_path / "one", "x", "base", [0.5])
    with pytest.raises(LossevoError, match="at least 2 finished runs"):
        st.two_sample(st.values(st.read_results([one]), "test_acc"), np.array([0.1, 0.2]))


@pytest.mark.slow
def test_train_with_seeds_gives_a_result_set(tmp_path: Path) -> None:
    result = run_script(
        "train.py", *TINY, "surrogate.steps=20", "seeds=3", "loss=a2", f"hydra.run.dir={tmp_path}"
    )
    assert result.returncode == 0, result.stderr
    rows = st.read_results([tmp_path])
    assert [int(r["seed"]) for r in rows] == [0, 1, 2] and {r["loss"] for r in rows} == {"a2"}
    assert rows[0]["setting"] == "digits/convnet/base"
    assert len({r["test_acc"] for r in rows}) > 1  # different seeds, different runs
    assert "test accuracy" in result.stdout and " ± " in result.stdout
