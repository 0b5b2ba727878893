"""The verdict: Welch p-values and Kendall τ against scipy on known samples, Holm's correction,
the sentence, and the files a real search leaves."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.stats import kendalltau, ttest_ind

from lossevo.losses.published import GENOMES
from lossevo.results import Fitness, Status, StopReason
from lossevo.store.journal import Journal
from lossevo.verdict.faithfulness import faithfulness
from lossevo.verdict.plan import Finalist
from lossevo.verdict.report import Verdict
from lossevo.verdict.statistics import holm

A = [0.874, 0.871, 0.877, 0.872, 0.876]  # a loss that is better
B = [0.869, 0.866, 0.871, 0.868, 0.864]  # the reference
C = [0.868, 0.870, 0.865, 0.869, 0.867]  # a loss that is not
BUDGET = 4800  # the validation budget (steps) of these rows


def done(value: float, per_run: list[float] | None = None) -> Fitness:
    return Fitness(Status.DONE, value, StopReason.COMPLETED, per_run=per_run)


def journal_with(tmp_path: Path, losses: dict[int, list[float]], reference: list[float]) -> Journal:
    journal = Journal(tmp_path)
    for cid, values in losses.items():
        g = GENOMES["bessel"]
        journal.add_candidate(candidate_id=cid, genome=g.to_dict(), key=f"k{cid}", equation=f"L{cid}",
                              latex="", seed=cid, phase="initial", parent_id=None, state=None)  # fmt: skip
        journal.finish_candidate(cid, done(0.5 + cid / 100), None)
        for run, v in enumerate(values):
            journal.add_validation(f"candidate_{cid}", cid, BUDGET, run, 100 + run, done(v))
    for run, v in enumerate(reference):
        journal.add_validation("cross_entropy", None, BUDGET, run, 100 + run, done(v))
    return journal


def test_welch_and_holm_match_scipy(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, {1: A, 2: C}, B)
    chosen = [Finalist(f"candidate_{i}", i, f"L{i}", None, 0, 0.5) for i in (2, 1)]
    reference = Finalist("cross_entropy", None, "CE", None, None, None)
    verdict = Verdict.from_journal(journal, reference, chosen, steps=BUDGET, runs=5, alpha=0.05)
    elsewhere = Verdict.from_journal(journal, reference, chosen, steps=900, runs=5, alpha=0.05)
    assert all(not v.values for v in [*elsewhere.losses, elsewhere.reference]), "rows of another budget"
    best, other = verdict.losses
    assert best.finalist.candidate_id == 1, "ordered by the validated mean"
    p_a = ttest_ind(A, B, equal_var=False, alternative="greater").pvalue
    p_c = ttest_ind(C, B, equal_var=False, alternative="greater").pvalue
    assert best.p_value == pytest.approx(p_a) and other.p_value == pytest.approx(p_c)
    assert best.p_holm == pytest.approx(min(1, 2 * p_a)) and other.p_holm == pytest.approx(max(2 * p_a, p_c))
    assert best.mean == pytest.approx(np.mean(A)) and best.std == pytest.approx(np.std(A, ddof=1))
    assert verdict.beats and verdict.sentence().startswith(
        "best_1 (candidate_1) beats cross_entropy: 0.874 ± 0.003 vs 0.868 ± 0.003, p = 0.0024"
    )
    assert "5 seeds at 4,800 steps" in verdict.sentence()
    files = verdict.write(tmp_path / "out")
    with open(files["validation"]) as fh:
        rows = list(csv.DictReader(fh))
    assert [r["loss"] for r in rows] == ["best_1", "best_2", "cross_entropy"]
    assert set(rows[0]) >= {"loss", "equation", "runs", "mean", "std", "p_value"}
    assert float(rows[0]["p_value"]) == pytest.approx(p_a) and rows[2]["p_value"] == ""
    assert "beats cross_entropy" in files["verdict"].read_text()
    journal.close()


def test_no_winner_is_said_plainly(tmp_path: Path) -> None:
    journal = journal_with(tmp_path, {1: C}, B)
    chosen = [Finalist("candidate_1", 1, "L1", None, 1, 0.8)]
    verdict = Verdict.from_journal(journal, Finalist("cross_entropy", None, "CE", None, None, None), chosen,
                                   steps=BUDGET, runs=5, alpha=0.05)  # fmt: skip
    assert not verdict.beats
    assert verdict.sentence().startswith("no loss found beats cross_entropy at this budget")
    journal.close()


def test_holm() -> None:
    assert holm([0.01, 0.04, 0.03, math.nan]) == pytest.approx([0.03, 0.06, 0.06, math.nan], nan_ok=True)


def test_faithfulness_tau_matches_scipy(tmp_path: Path) -> None:
    rung0 = {1: 0.5, 2: 0.6, 3: 0.7, 4: 0.4, 5: 0.65}
    rung1 = {1: 0.80, 2: 0.78, 3: 0.85, 5: 0.81}
    seeds = {1: [0.80, 0.81], 2: [0.77, 0.79], 3: [0.86, 0.84], 5: [0.80, 0.82]}
    journal = journal_with(tmp_path, {c: [] for c in rung0}, [])
    for c in rung0:  # rung 0 as recorded by finish_candidate: overwrite with the values above
        journal.finish_candidate(c, done(rung0[c]), None)
    for c in rung1:
        journal.promote(c, 1)
        journal.finish_candidate(c, done(rung1[c], per_run=seeds[c]), None, rung=1)
    taus = {a.label: a.tau for a in faithfulness(journal)}
    both = sorted(rung1)
    expected = kendalltau([rung0[c] for c in both], [rung1[c] for c in both])
    assert (
        taus["rung 0 vs rung 1"].tau == pytest.approx(expected.statistic) and taus["rung 0 vs rung 1"].n == 4
    )
    seed_tau = kendalltau([seeds[c][0] for c in both], [seeds[c][1] for c in both]).statistic
    assert taus["seed vs seed at rung 1"].tau == pytest.approx(seed_tau)
    journal.close()


@pytest.mark.slow
def test_a_search_ends_with_its_verdict(tmp_path: Path) -> None:
    from .conftest import TINY, run_script

    args = [*TINY, "search.budget=6", "search.initial_population=3", "search.population_size=2",
            "search.tournament_size=2", "surrogate.steps=30", "validate.runs=2", "top_k=2",
            f"hydra.run.dir={tmp_path}"]  # fmt: skip
    result = run_script("evolve.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "verdict: " in result.stdout and (tmp_path / "verdict.md").is_file()
    with open(tmp_path / "validation.csv") as fh:
        rows = list(csv.DictReader(fh))
    validated = [r for r in rows if r["loss"].startswith("best_")]
    assert len(validated) == 2 and rows[-1]["loss"] == "cross_entropy" and rows[-1]["runs"] == "2"
    means = [float(r["mean"]) for r in validated]
    assert means == sorted(means, reverse=True), "best_k ordered by the validated mean"
    for rank, r in enumerate(validated, start=1):  # best_k.yaml follows the same order
        header = (tmp_path / "conf" / "loss" / f"best_{rank}.yaml").read_text().splitlines()[0]
        assert f"candidate {r['candidate']}," in header and "validated" in header
        assert (
            yaml.safe_load((tmp_path / "conf" / "loss" / f"best_{rank}.yaml").read_text())["name"]
            == f"best_{rank}"
        )
    # A re-run of the finished search trains nothing and gives the same verdict.
    again = run_script("evolve.py", *args)
    assert again.returncode == 0 and "validation trainings" not in again.stdout + again.stderr
    sentence = (tmp_path / "verdict.md").read_text().splitlines()[2].strip("*")
    assert " ".join(sentence.split()) in " ".join(again.stdout.split())


@pytest.mark.slow
def test_validate_py_gives_an_earlier_search_its_verdict(tmp_path: Path) -> None:
    import sqlite3

    from .conftest import TINY, run_script

    search = [*TINY, "search=random", "search.budget=4", "surrogate.steps=30", "validate.runs=0"]
    result = run_script("evolve.py", *search, f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0 and not (tmp_path / "verdict.md").exists(), result.stderr[-2000:]
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        before = db.execute("SELECT * FROM rungs ORDER BY candidate_id, rung").fetchall()
    result = run_script(
        "validate.py", f"run={tmp_path}", "runs=2", "top_k=1", f"hydra.run.dir={tmp_path / 'v'}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "verdict: " in result.stdout and (tmp_path / "verdict.md").is_file()
    with sqlite3.connect(tmp_path / "journal.sqlite") as db:
        assert db.execute("SELECT * FROM rungs ORDER BY candidate_id, rung").fetchall() == before, (
            "no retraining"
        )
        runs = db.execute("SELECT loss, COUNT(*) FROM validation GROUP BY loss ORDER BY loss").fetchall()
    assert len(runs) == 2 and all(n == 2 for _, n in runs) and runs[-1][0] == "cross_entropy"
    missing = run_script("validate.py", f"run={tmp_path / 'nothing'}", f"hydra.run.dir={tmp_path / 'w'}")
    assert missing.returncode == 2 and "holds no journal.sqlite" in missing.stderr


def test_a_finalist_with_a_failed_validation_run_beats_nothing(tmp_path: Path) -> None:
    """A mean over the runs that survived flatters a loss that sometimes diverges: the failure is
    counted and shown, and the verdict does not call it a winner however good the rest looks."""
    journal = journal_with(tmp_path, {1: A}, B)
    journal.add_validation("candidate_1", 1, BUDGET, 5, 105, Fitness.failure(StopReason.NONFINITE, "nan"))
    chosen = [Finalist("candidate_1", 1, "L1", None, 1, 0.8)]
    verdict = Verdict.from_journal(journal, Finalist("cross_entropy", None, "CE", None, None, None), chosen,
                                   steps=BUDGET, runs=6, alpha=0.05)  # fmt: skip
    best = verdict.losses[0]
    assert (best.failed, best.runs) == (1, 6) and best.p_value < 0.05
    assert not verdict.beats
    assert verdict.sentence().startswith(
        "no loss found beats cross_entropy reliably at this budget: the best, best_1 (candidate_1), "
        "failed 1 of 6 validation runs"
    )
    table = verdict.write(tmp_path / "out")["verdict"].read_text()
    assert "| best_1 | 1 | 5/6 |" in table and "| cross_entropy |  | 5/5 |" in table
    journal.close()


def test_validation_trains_the_whole_budget() -> None:
    """The verdict's trainings have no pre-check and no early stop: every run yields a value."""
    from lossevo.config import compose_config
    from lossevo.verdict.plan import validation_overrides

    from .conftest import TINY

    overrides = validation_overrides(["augment=cutout"], 900)
    cfg = compose_config("evolve", [*TINY, "surrogate.precheck.step=100", *overrides])
    assert cfg.surrogate.steps == 900 and cfg.augment.cutout > 0
    assert cfg.surrogate.precheck.step is None and cfg.surrogate.early_stop.step is None
