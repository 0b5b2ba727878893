"""`lossevo compare` on a real sweep of searches (random search and regularized evolution, two seeds
each, with verdicts): groups by identity without the seed, success rates, leads, equal compute, a
ledger, and never a write to a journal (#28)."""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from lossevo.analysis.comparison import (
    JOINT_T,
    JOINT_WILSON,
    T_ACROSS,
    WILSON,
    compare_searches,
    find_searches,
)
from lossevo.analysis.search_record import read_search
from lossevo.store.journal import Journal
from lossevo.store.shared_trainings import SharedTrainings

from .conftest import ROOT, TINY, run_script, script_command, script_env

pytestmark = pytest.mark.slow

SWEEP = [
    *TINY,
    "surrogate.steps=30",
    "surrogate.val_every=30",
    "search.budget=5",
    "validate.runs=2",
    "validate.top_k=1",
    "validate.steps=[30,60]",
    "validate.baselines=[reference]",
]

ONE_BUDGET = [o for o in SWEEP if not o.startswith("validate.steps=")] + ["validate.steps=30"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sweep")
    result = run_script(
        "evolve.py",
        "-m",
        *SWEEP,
        "search=random,regularized_evolution",
        "seed=0,1",
        f"hydra.sweep.dir={root}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # The sweep compares its searches when it ends (a Hydra callback), as `lossevo compare` would.
    assert (root / "comparison.md").is_file() and "search=RandomSearch: 2 searches" in result.stdout
    assert sorted(p.parent.name for p in root.glob("*/journal.sqlite")) == [
        "search-random__seed-0",
        "search-random__seed-1",
        "search-regularized_evolution__seed-0",
        "search-regularized_evolution__seed-1",
    ]
    return root


def compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lossevo", "compare", *args],
        cwd=ROOT,
        env=script_env(),
        capture_output=True,
        text=True,
    )


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_compare_groups_searches_by_method_and_reads_only(sweep: Path) -> None:
    journals = sorted(sweep.glob("*/journal.sqlite"))
    assert len(journals) == 4
    before = {j: digest(j) for j in journals}
    result = compare(str(sweep))
    assert result.returncode == 0, result.stderr[-3000:]
    assert {j: digest(j) for j in journals} == before, "compare wrote to a journal"
    out = result.stdout
    assert "search=RandomSearch: 2 searches" in out and "search=RegularizedEvolution: 2 searches" in out
    assert "at equal compute" in out
    for name in ("comparison.md", "comparison.csv", "anytime.png", "leads.png"):
        assert (sweep / name).is_file(), name
    rows = list(csv.DictReader((sweep / "comparison.csv").open()))
    assert len(rows) == 4 and {r["group"] for r in rows} == {
        "search=RandomSearch",
        "search=RegularizedEvolution",
    }


def test_success_rates_and_leads_are_those_of_each_search_verdict(sweep: Path) -> None:
    comparison = compare_searches([read_search(run) for run in find_searches([sweep])])
    for summary in comparison.groups:
        assert [r.steps for r in summary.success] == [30, 60]
        for rate in summary.success:
            # Recounted from each search's own validation.csv: best_1's "beats" at that budget.
            beats = []
            for s in summary.group.searches:
                rows = list(csv.DictReader((s.folder / "validation.csv").open()))
                beats += [
                    r["beats"] == "True"
                    for r in rows
                    if r["loss"] == "best_1" and int(r["steps"]) == rate.steps
                ]
            assert (rate.successes, rate.n) == (sum(beats), len(beats)) == (rate.successes, 2)
            # The sweep's verdicts share their baseline runs: Wilson's interval, widened by the joint
            # bootstrap (never narrower than the interval of independent verdicts).
            low, high = proportion_confint(sum(beats), 2, method="wilson")
            assert rate.method == JOINT_WILSON and rate.low <= low + 1e-12 and rate.high >= high - 1e-12
        for lead in summary.leads:
            each = []
            for s in summary.group.searches:
                rows = list(csv.DictReader((s.folder / "comparisons.csv").open()))
                each += [
                    float(r["difference"])
                    for r in rows
                    if r["loss"] == "best_1" and int(r["steps"]) == lead.steps
                ]
            assert lead.leads == pytest.approx(each) and lead.mean == pytest.approx(np.mean(each))
            assert lead.method == JOINT_T and lead.low <= lead.mean <= lead.high
    (contrast,) = comparison.contrasts
    searches = [s for g in comparison.groups for s in g.group.searches]
    assert contrast.steps == min(s.search_steps for s in searches)
    a, b = ([s.best_at(contrast.steps) for s in g.group.searches] for g in comparison.groups)
    assert contrast.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert contrast.low <= contrast.difference <= contrast.high and 0 <= contrast.p <= 1
    ps = [e.p for e in comparison.ledger]
    assert len(ps) == 4 and [e.p_adjusted for e in comparison.ledger] == pytest.approx(
        multipletests(ps, method="holm")[1]
    )


def test_a_running_search_is_read_as_it_stands(sweep: Path) -> None:
    run = find_searches([sweep])[0]
    with Journal(run) as journal:
        journal.lock()  # a search that owns its folder, still running
        record = read_search(run)
    assert record.candidates == 5 and record.anytime and record.verdict is not None


def test_bad_input_is_one_line_and_different_settings_are_never_pooled(sweep: Path, tmp_path: Path) -> None:
    empty = compare(str(tmp_path))
    assert empty.returncode == 2 and "holds no search" in empty.stderr and "Traceback" not in empty.stderr
    runs = find_searches([sweep])
    other = tmp_path / "no_verdict"
    result = run_script(
        "evolve.py",
        *SWEEP,
        "search=random",
        "seed=0",
        "validate.runs=0",
        "surrogate.steps=20",
        f"hydra.run.dir={other}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    mixed = compare(str(runs[0]), str(other), "-o", str(tmp_path / "out"))
    assert mixed.returncode == 0, mixed.stderr[-3000:]
    assert "not compared: they differ in surrogate.steps" in mixed.stdout
    alone = compare(str(other), "-o", str(tmp_path / "alone"))
    assert alone.returncode == 0 and "1 of 1 searches have no verdict" in alone.stdout


def test_verdicts_of_other_settings_are_never_pooled(sweep: Path, tmp_path: Path) -> None:
    more = tmp_path / "three_runs"
    result = run_script(
        "evolve.py", *SWEEP, "search=random", "seed=2", "validate.runs=3", f"hydra.run.dir={more}"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    comparison = compare_searches([read_search(run) for run in find_searches([sweep, more])])
    (random,) = [g for g in comparison.groups if g.group.label == "search=RandomSearch"]
    assert len(random.group.searches) == 3 and [r.n for r in random.success] == [2, 2]
    assert any("1 verdicts measured other settings" in note for note in comparison.notes), comparison.notes
    assert len(comparison.ledger) == 5, "every verdict counts once in the ledger"


def _baseline_rows(run: Path) -> list[tuple]:
    with Journal(run) as journal:
        return [
            (v.loss, v.setting, v.budget, v.run, v.seed, v.fitness, v.test_acc, v.reused)
            for v in journal.validations()
            if v.candidate_id is None
        ]


def test_a_sweep_trains_each_baseline_run_once_and_every_verdict_reads_the_same_runs(sweep: Path) -> None:
    runs = find_searches([sweep])
    rows = {run.name: _baseline_rows(run) for run in runs}
    # 1 baseline x 2 runs x 2 budgets, the same trainings (seeds, accuracies) in every job's journal
    assert all(len(r) == 4 for r in rows.values()), rows
    assert len({tuple(r[:7] for r in job) for job in rows.values()}) == 1
    # one job trained them; the three others read them from the sweep's store
    trained_here = [name for name, job in rows.items() if not any(r[7] for r in job)]
    assert len(trained_here) == 1 and all(all(r[7] for r in rows[n]) for n in rows if n not in trained_here)
    with SharedTrainings(sweep) as store:
        assert store.count() == 4
    reused = next(run for run in runs if run.name not in trained_here)
    assert (reused / "verdict.md").read_text().count("(+2 reused)") == 2  # per budget
    record = read_search(reused)
    assert record.shared == (str(sweep.absolute()), 0)


@pytest.fixture(scope="module")
def independent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("independent")
    result = run_script(
        "evolve.py",
        "-m",
        *ONE_BUDGET,
        "search=random",
        "seed=0,1",
        "validate.share=false",
        f"hydra.sweep.dir={root}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_validate_share_false_gives_each_search_its_own_verdict_seeds(independent: Path) -> None:
    runs = find_searches([independent])
    assert len(runs) == 2 and not (independent / SharedTrainings.FILENAME).exists()
    a, b = (_baseline_rows(run) for run in runs)
    assert not any(r[7] for r in a + b)
    assert {r[4] for r in a}.isdisjoint({r[4] for r in b}), "independent verdicts draw their own seeds"
    (group,) = compare_searches([read_search(run) for run in runs]).groups
    (rate,) = group.success
    assert rate.method == WILSON
    assert (rate.low, rate.high) == pytest.approx(proportion_confint(rate.successes, 2, method="wilson"))
    assert all(lead.method == T_ACROSS for lead in group.leads)


def test_searches_run_at_once_share_one_store_safely(tmp_path: Path) -> None:
    """Two searches started together that name the same store (validate.share=<folder>): both
    finish, and both verdicts read one result per baseline run, whichever process trained it."""
    store = tmp_path / "store"
    commands = [
        script_command(
            "evolve.py",
            *ONE_BUDGET,
            "trainer.threads=1",
            "search=random",
            f"seed={seed}",
            f"validate.share={store}",
            f"hydra.run.dir={tmp_path / f'run{seed}'}",
        )
        for seed in (0, 1)
    ]
    env = {**script_env(), "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for c in commands
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-3000:]
    a, b = (_baseline_rows(tmp_path / f"run{seed}") for seed in (0, 1))
    assert len(a) == len(b) == 2 and [r[:7] for r in a] == [r[:7] for r in b]
    with SharedTrainings(store) as shared:
        assert shared.count() == 2


def test_a_comparison_is_one_wandb_run_and_the_sweep_root_one_dashboard(
    sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from lossevo.analysis.comparison_report import write_comparison
    from lossevo.analysis.comparison_tracking import track_comparison
    from lossevo.tracking.dashboard import build_workspace, definition, target_from

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no API key: offline run files
    comparison = compare_searches([read_search(run) for run in find_searches([sweep])])
    files = write_comparison(comparison, tmp_path / "out")
    assert track_comparison(comparison, files, {"mode": "auto", "project": "lossevo-test"}) == "offline"
    (run,) = (tmp_path / "out" / "wandb").glob("offline-run-*")
    tables = {p.name.split("_")[0] for p in run.rglob("*.table.json")}
    assert {"searches", "success", "leads", "contrasts", "ledger"} <= tables, tables
    searches = json.loads(next(run.rglob("searches_*.table.json")).read_text())
    assert len(searches["data"]) == 4 and searches["columns"][:2] == ["group", "search"]
    # The sweep's root as one dashboard: every job's runs and the comparison's section.
    target = target_from(str(sweep))
    assert len(target.members) == 4 and target.compared == (
        "search=RandomSearch",
        "search=RegularizedEvolution",
    )
    text = json.dumps(definition(build_workspace(target)))
    assert "Comparison of searches" in text and "anytime/search=RandomSearch" in text
    assert all(member in text for member in target.members)
