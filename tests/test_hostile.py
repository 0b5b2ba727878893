"""Hostile use through the real CLI: damaged, lost or shared run folders, a full disk, a read-only
folder, files that are not genomes. Each gets one clear line and a non-zero exit; nothing
recorded is lost."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import ROOT, TINY, run_script, script_command, script_env

pytestmark = pytest.mark.slow

SEARCH = [
    *TINY,
    "search.budget=4",
    "search.initial_population=3",
    "search.population_size=2",
    "search.tournament_size=2",
    "surrogate.steps=30",
    "validate.runs=0",
]


def one_clear_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]


def candidates(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return db.execute("SELECT id, status, fitness FROM candidates ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished")
    result = run_script("evolve.py", *SEARCH, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run_dir, target)
    return target


def test_lossevo_show_refuses_a_binary_file_and_a_journal(finished: Path, tmp_path: Path) -> None:
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    for path in (binary, finished / "journal.sqlite"):
        result = subprocess.run(
            [sys.executable, "-m", "lossevo", "show", str(path)],
            cwd=ROOT,
            env=script_env(),
            capture_output=True,
            text=True,
        )
        one_clear_error(result, "is a binary file, not a genome file")


@pytest.mark.parametrize("what", ["candidates", "candidates_status"])
def test_a_damaged_journal_is_refused_in_one_line(what: str, finished: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished, tmp_path)
    path = run_dir / "journal.sqlite"
    with sqlite3.connect(path) as db:
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (what,)).fetchone()
    data = bytearray(path.read_bytes())
    start = (root - 1) * page_size
    data[start : start + page_size] = b"\xa5" * page_size  # the table's (or index's) page, overwritten
    path.write_bytes(bytes(data))
    result = run_script("evolve.py", *SEARCH, f"hydra.run.dir={run_dir}")
    one_clear_error(result, f"{path} is damaged")


def test_a_lost_journal_does_not_start_a_new_search_over_the_old_one(finished: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished, tmp_path)
    (run_dir / "journal.sqlite").write_bytes(b"")  # truncated to 0 bytes
    result = run_script("evolve.py", *SEARCH, f"hydra.run.dir={run_dir}")
    one_clear_error(result, "holds candidate folders but its journal is new or empty")


def test_a_second_process_on_a_running_search_is_refused(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    command = script_command("evolve.py", *SEARCH, "surrogate.steps=300", f"hydra.run.dir={run_dir}")
    log = (tmp_path / "first.log").open("w")  # not a pipe: nobody reads it while the first one runs
    first = subprocess.Popen(command, cwd=ROOT, env=script_env(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "journal.sqlite.lock").exists():
        time.sleep(0.05)
    time.sleep(0.5)
    os.kill(first.pid, signal.SIGSTOP)  # holds its lock, however slow the second one starts
    try:
        second = run_script("evolve.py", *SEARCH, "surrogate.steps=300", f"hydra.run.dir={run_dir}")
    finally:
        os.kill(first.pid, signal.SIGCONT)
    one_clear_error(second, f"is in use by process {first.pid}")
    assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()[-2000:]
    log.close()
    rows = candidates(run_dir)
    assert [r[0] for r in rows] == [1, 2, 3, 4] and all(r[1] in ("done", "failed") for r in rows)


def _in_own_mounts(script: str) -> subprocess.CompletedProcess:
    """Run a shell script in a private mount namespace (a tmpfs, a read-only bind mount)."""
    if shutil.which("unshare") is None:
        pytest.skip("needs util-linux's unshare")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("mount namespaces are not available here")
    return subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        cwd=ROOT,
        env=script_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_full_disk_is_one_line_and_what_was_recorded_stays(tmp_path: Path) -> None:
    disk, saved = tmp_path / "disk", tmp_path / "saved"
    disk.mkdir()
    command = " ".join(script_command("evolve.py", *SEARCH, "search.budget=40", f"hydra.run.dir={disk}/run"))
    result = _in_own_mounts(
        f"mount -t tmpfs -o size=400k tmpfs {disk} && {command}; rc=$?; cp -r {disk}/run {saved}; exit $rc"
    )
    one_clear_error(result, "the disk is full; free some space")
    rows = candidates(saved)
    assert rows and all(r[1] in ("pending", "running", "done", "failed") for r in rows)
    with sqlite3.connect(saved / "journal.sqlite") as db:
        assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def test_a_read_only_run_folder_is_one_line(finished: Path, tmp_path: Path) -> None:
    run_dir = copy_of(finished, tmp_path)
    command = " ".join(script_command("evolve.py", *SEARCH, "search.budget=5", f"hydra.run.dir={run_dir}"))
    result = _in_own_mounts(
        f"mount --bind {run_dir} {run_dir} && mount -o remount,ro,bind {run_dir} && {command}"
    )
    one_clear_error(result, "it is read-only; make the folder and its files writable")
    assert candidates(run_dir) == candidates(finished)


@pytest.mark.parametrize(
    ("path", "message"), [("", "the path is empty"), ("FOLDER", "is a folder, not a genome")]
)
def test_loss_path_that_is_empty_or_a_folder(path: str, message: str, tmp_path: Path) -> None:
    path = str(tmp_path) if path == "FOLDER" else path
    result = run_script(
        "train.py", *TINY, "loss=file", f"loss.path={path}", f"hydra.run.dir={tmp_path / 'r'}"
    )
    one_clear_error(result, message)


def test_loss_overrides_work_in_a_search_and_reach_every_candidate(tmp_path: Path) -> None:
    import json

    import yaml

    from lossevo.losses.published import GENOMES

    good = tmp_path / "good.json"
    good.write_text(json.dumps(GENOMES["bessel"].to_dict()))
    for name, extra in (
        ("file", ["loss=file", f"loss.path={good}"]),
        ("smoothing", ["loss.label_smoothing=0.1"]),
    ):
        run_dir = tmp_path / name
        result = run_script(
            "evolve.py",
            *SEARCH,
            "search.budget=2",
            "search.initial_population=2",
            *extra,
            f"hydra.run.dir={run_dir}",
        )
        assert result.returncode == 0, result.stderr[-3000:]
        config = yaml.safe_load((run_dir / "candidates" / "000001" / "config.yaml").read_text())
        assert config["loss"]["_target_"] == "lossevo.losses.genome_loss"
        if name == "smoothing":  # a training setting: the candidates get it too, and best_1.yaml keeps it
            assert config["loss"]["label_smoothing"] == 0.1
            assert (
                yaml.safe_load((run_dir / "conf" / "loss" / "best_1.yaml").read_text())["label_smoothing"]
                == 0.1
            )


def test_a_study_or_elimination_resumed_with_other_settings_is_refused(tmp_path: Path) -> None:
    study = [*TINY, "surrogate.steps=10", "surrogate.val_every=10", "losses.random=2", "settings=[base]"]
    first = run_script("correlate.py", *study, f"hydra.run.dir={tmp_path / 'c'}")
    assert first.returncode == 0, first.stderr[-3000:]
    again = run_script("correlate.py", *study, "surrogate.steps=15", f"hydra.run.dir={tmp_path / 'c'}")
    one_clear_error(again, "surrogate.steps: 10 -> 15")
    renamed = run_script(
        "correlate.py", *study, "settings=['base: augment=cutout']", f"hydra.run.dir={tmp_path / 'c'}"
    )
    one_clear_error(renamed, "base: 'augment=base' -> 'augment=cutout'")


# ---------------------------------------------------------------------------- second pass
def test_a_cifar_folder_that_would_run_code_runs_nothing(tmp_path: Path) -> None:
    """A crafted data_batch_1 (its __reduce__ calls os.system): nothing runs, one line, exit 2."""
    import pickle

    from .test_data import _RunsCode, make_cifar10

    root = make_cifar10(tmp_path / "data")
    marker = tmp_path / "it-ran"
    (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(pickle.dumps([_RunsCode(marker)]))
    result = run_script(
        "train.py", *TINY, "dataset=cifar10", f"dataset.root={root}", f"hydra.run.dir={tmp_path / 'r'}"
    )
    one_clear_error(result, "data_batch_1 asks to load posix.system, which its format never holds")
    assert not marker.exists()


def test_bad_values_are_refused_by_name_before_anything_is_recorded(tmp_path: Path) -> None:
    """(Every rule: tests/test_checks.py; here that the CLI says it in one line, exit 2.)"""
    for value, message in (
        ("validate.alpha=2", "validate.alpha=2 is out of range: it must be a number in (0, 0.5)"),
        ("surrogate.steps=-5", "surrogate.steps=-5 is out of range"),
    ):
        run_dir = tmp_path / value.split("=")[0]
        one_clear_error(run_script("evolve.py", *SEARCH, value, f"hydra.run.dir={run_dir}"), message)
        assert not (run_dir / "journal.sqlite").exists()


def test_train_whose_every_training_fails_exits_non_zero(tmp_path: Path) -> None:
    too_big = run_script(
        "train.py", *TINY, "dataset=fashion_mnist", "dataset.train_size=5", f"hydra.run.dir={tmp_path / 'a'}"
    )
    one_clear_error(too_big, "surrogate.batch_size=32 exceeds the 5 training images")
    digits = run_script("train.py", *TINY, "+dataset.train_size=5", f"hydra.run.dir={tmp_path / 'c'}")
    one_clear_error(digits, "dataset.train_size is not an option of dataset (lossevo.data.digits)")
    never = run_script(
        "train.py",
        *TINY,
        "seeds=2",
        "surrogate.precheck.step=5",
        "surrogate.precheck.min_train_acc=1",
        f"hydra.run.dir={tmp_path / 'b'}",
    )
    one_clear_error(never, "every training of cross_entropy failed (2 of 2)")
    assert len((tmp_path / "b" / "results.csv").read_text().splitlines()) == 3, "both recorded"


def test_deep_or_huge_genome_files_are_one_line(tmp_path: Path) -> None:
    import json

    node: dict = {"leaf": "yhat"}
    for _ in range(300):
        node = {"op": "neg", "args": [node]}
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps({"space": "tree", "primitives": "ngl", "tree": node}))
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("[" * 200_000 + "]" * 200_000)
    for path in (deep, bomb):
        result = subprocess.run(
            [sys.executable, "-m", "lossevo", "show", str(path)],
            cwd=ROOT,
            env=script_env(),
            capture_output=True,
            text=True,
        )
        one_clear_error(result, "is nested more than 200 levels deep")
    trained = run_script(
        "train.py", *TINY, "loss=file", f"loss.path={deep}", f"hydra.run.dir={tmp_path / 'r'}"
    )
    one_clear_error(trained, "is nested more than 200 levels deep")
    words = subprocess.run(
        [sys.executable, "-m", "lossevo", "show", "taylorglo", "--param", "params=[a,b]"],
        cwd=ROOT,
        env=script_env(),
        capture_output=True,
        text=True,
    )
    one_clear_error(words, "loss 'taylorglo' cannot be built from params=['a', 'b']")


def test_ctrl_c_during_the_verdict_says_what_was_kept_and_the_command_resumes(tmp_path: Path) -> None:
    run_dir, log = tmp_path / "run", tmp_path / "output.log"
    command = script_command("evolve.py", *SEARCH, "validate.runs=2", f"hydra.run.dir={run_dir}")
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=script_env(), stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 300
        while time.time() < deadline and proc.poll() is None and "validation of" not in log.read_text():
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    assert f"error: interrupted: everything that finished is kept in {run_dir / 'journal.sqlite'}" in text
    report = run_script("report.py", f"run={run_dir}", f"hydra.run.dir={tmp_path / 'report'}")
    assert report.returncode == 0, report.stderr[-2000:]
    assert "the verdict is incomplete" in (tmp_path / "report" / "verdict.md").read_text()
    resumed = run_script("evolve.py", *SEARCH, "validate.runs=2", f"hydra.run.dir={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        done = db.execute("SELECT COUNT(*) FROM validation WHERE status = 'done'").fetchone()[0]
        hits = db.execute("SELECT test_hits FROM validation WHERE status = 'done'").fetchall()
    assert done == 2 * 4, "1 finalist and 3 baselines, 2 runs each"
    # Each training kept which test images it got right, across the kill and the resume (digits: 300).
    assert all(h and h.startswith("300:") for (h,) in hits), hits[:2]


def test_a_resume_that_finds_less_than_the_folder_had_says_so(finished: Path, tmp_path: Path) -> None:
    deleted = copy_of(finished, tmp_path / "deleted")
    shutil.rmtree(deleted / "candidates" / "000002")
    result = run_script("evolve.py", *SEARCH, f"hydra.run.dir={deleted}")
    assert result.returncode == 0, result.stderr[-3000:]
    said = "1 finished candidate folder was deleted (000002): the journal keeps their results and nothing"
    assert said in result.stdout + result.stderr
    assert candidates(deleted) == candidates(finished)
    # A journal older than its folder (restored from a copy made after 2 candidates): 3 and 4 redone.
    older = tmp_path / "older"
    first = run_script("evolve.py", *SEARCH, "search.budget=2", f"hydra.run.dir={older}")
    assert first.returncode == 0, first.stderr[-3000:]
    fell_back = copy_of(finished, tmp_path / "fell_back")
    shutil.copy(older / "journal.sqlite", fell_back / "journal.sqlite")
    result = run_script("evolve.py", *SEARCH, f"hydra.run.dir={fell_back}")
    assert result.returncode == 0, result.stderr[-3000:]
    said = "the journal has no row for 2 candidates whose folder exists (000003, 000004)"
    assert said in result.stdout + result.stderr
    assert candidates(fell_back) == candidates(finished)


def test_a_multirun_job_folder_is_passed_back_as_it_is(tmp_path: Path) -> None:
    """evolve -m names its jobs so that report, validate and dashboard take them unquoted."""
    sweep = tmp_path / "sweep"
    result = run_script(
        "evolve.py",
        "-m",
        *SEARCH,
        "search.budget=2",
        "search.initial_population=2",
        "seed=0,1",
        f"hydra.sweep.dir={sweep}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(p.parent for p in sweep.glob("*/journal.sqlite"))
    # Named after what the sweep varies (the full command line is in each job's .hydra/overrides.yaml).
    assert [job.name for job in jobs] == ["seed-0", "seed-1"], jobs
    job = jobs[0]
    report = run_script("report.py", f"run={job}", f"hydra.run.dir={tmp_path / 'report'}")
    assert report.returncode == 0, report.stderr[-3000:]
    validated = run_script(
        "validate.py", f"run={job}", "runs=1", "baselines=[reference]", f"hydra.run.dir={tmp_path / 'v'}"
    )
    assert validated.returncode == 0, validated.stderr[-3000:]
    env = {**script_env(), "WANDB_MODE": "offline"}
    dashboard = subprocess.run(
        [sys.executable, "-m", "lossevo", "dashboard", str(job), "--offline"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert dashboard.returncode == 0 and "Traceback" not in dashboard.stderr, dashboard.stderr[-3000:]
    assert (job / "dashboard.json").is_file()


# ---------------------------------------------------------------------------- third pass (#27)
def test_a_run_replaces_or_removes_only_the_outputs_it_wrote(finished: Path, tmp_path: Path) -> None:
    """#27.2: files of the user's in conf/loss/ and export/ stay; a link is replaced, not written
    through; an output folder leading out of the run folder is refused; an empty run folder too."""
    run_dir = copy_of(finished, tmp_path)
    mine = [run_dir / "conf" / "loss" / "best_9.yaml", run_dir / "export" / "best_9.py"]
    for path in mine:
        path.write_text("# mine\n")
    outside = tmp_path / "outside.yaml"
    outside.write_text("# outside\n")
    link = run_dir / "conf" / "loss" / "best_1.yaml"
    link.unlink()
    link.symlink_to(outside)
    result = run_script("evolve.py", *SEARCH, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [p.read_text() for p in mine] == ["# mine\n"] * 2
    assert outside.read_text() == "# outside\n"
    assert not link.is_symlink() and "genome:" in link.read_text()
    shutil.rmtree(run_dir / "export")
    (run_dir / "export").symlink_to(tmp_path, target_is_directory=True)
    away = run_script("evolve.py", *SEARCH, f"hydra.run.dir={run_dir}")
    one_clear_error(away, "export leads out of the run folder")
    assert not list(tmp_path.glob("best_*.py"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    empty = subprocess.run(
        script_command("evolve.py", *SEARCH, "hydra.run.dir="),
        cwd=cwd,
        env=script_env(),
        capture_output=True,
        text=True,
    )
    one_clear_error(empty, "hydra.run.dir is empty")
    assert not any(cwd.iterdir())


def test_owned_files_removes_its_own_stale_outputs_only(tmp_path: Path) -> None:
    from lossevo.store.journal import Journal
    from lossevo.store.owned_files import OwnedFiles

    with Journal(tmp_path) as journal:
        owned = OwnedFiles(tmp_path, journal)
        written = [owned.write(f"conf/loss/best_{k}.yaml", f"{k}\n") for k in (1, 2, 3)]
        (tmp_path / "conf" / "loss" / "best_4.yaml").write_text("the user's\n")
    with Journal(tmp_path) as journal:  # a resume: the record is in the journal
        owned = OwnedFiles(tmp_path, journal)
        owned.remove_stale("conf/loss", [owned.write("conf/loss/best_1.yaml", "1 again\n")])
    left = sorted(p.name for p in (tmp_path / "conf" / "loss").iterdir())
    assert left == ["best_1.yaml", "best_4.yaml"], left
    assert written[0].read_text() == "1 again\n"


def test_overrides_hydra_would_answer_with_a_traceback_are_one_line(tmp_path: Path) -> None:
    """#27.13: a group set to null, a deleted _target_, a word where a list belongs."""
    for override, message in (
        ("loss=null", "loss=null: the loss group needs an option"),
        ("~dataset._target_", "~dataset._target_ removes what builds dataset"),
        (
            "validate.baselines=reference",
            "validate.baselines=reference is not a list: write validate.baselines=[reference]",
        ),
    ):
        run_dir = tmp_path / str(len(override))
        one_clear_error(run_script("evolve.py", *SEARCH, override, f"hydra.run.dir={run_dir}"), message)
        assert not (run_dir / "journal.sqlite").exists()


def test_the_python_api_passes_paths_as_data_and_checks_its_overrides(tmp_path: Path) -> None:
    """#27.11, #27.13: a run folder with quotes, commas and spaces is one value; ${...} or a newline
    is refused; None or a string where a list of overrides belongs is one LossevoError; two threads
    composing at once both get their config."""
    import threading

    from lossevo import api
    from lossevo.config import compose_config
    from lossevo.config.command_line import override_value
    from lossevo.errors import LossevoError

    for name in ("it's, a [run]", "back\\slash\\", "a'b\\'c"):
        cfg = compose_config("validate", [f"run={override_value(str(tmp_path / name), 'run_dir')}"])
        assert cfg.run == str(tmp_path / name)
    for name in ("${oc.env:HOME}", "two\nlines"):
        with pytest.raises(LossevoError, match="a Hydra override cannot pass as text"):
            api.validate(tmp_path / name)
    for bad, message in (
        ("dataset=digits", "must be a list of strings"),
        (["dataset=digits", None], r"\[1\] is None"),
        (["loss=null"], "the loss group needs an option"),
    ):
        with pytest.raises(LossevoError, match=message):
            api.train(bad, run_dir=tmp_path / "t")  # type: ignore[arg-type]
    seeds: list[int] = []

    def compose(seed: int) -> None:
        seeds.append(int(compose_config("train", [f"seed={seed}"]).seed))

    threads = [threading.Thread(target=compose, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(seeds) == list(range(8))


def test_a_refused_resume_leaves_the_folders_command_line_as_it_was(finished: Path, tmp_path: Path) -> None:
    """#27.14: Hydra writes .hydra/ before the journal is checked; a refused command puts it back."""
    run_dir = copy_of(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in (run_dir / ".hydra").glob("*.yaml")}
    assert set(before) >= {"config.yaml", "overrides.yaml"}
    refused = run_script("evolve.py", *SEARCH, "surrogate.steps=40", f"hydra.run.dir={run_dir}")
    one_clear_error(refused, "holds a search with other settings")
    assert {p.name: p.read_bytes() for p in (run_dir / ".hydra").glob("*.yaml")} == before


def test_a_hand_edited_strategy_state_or_tree_is_one_line(finished: Path, tmp_path: Path) -> None:
    """#27.12: a strategy state missing a field; a tree leaf given arguments."""
    import json

    from lossevo.errors import GenomeError
    from lossevo.genome import genome_from_dict

    run_dir = copy_of(finished, tmp_path)
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        (state,) = db.execute("SELECT state FROM strategy_state").fetchone()
        data = json.loads(state)
        data.pop(next(iter(data)))
        db.execute("UPDATE strategy_state SET state = ?", (json.dumps(data),))
    result = run_script("evolve.py", *SEARCH, f"hydra.run.dir={run_dir}")
    one_clear_error(result, "the strategy's saved state is not one a search writes")
    leaf = {"space": "tree", "primitives": "glo", "tree": {"leaf": "y", "args": [{"leaf": "yhat"}]}}
    with pytest.raises(GenomeError, match="a leaf or a constant takes no 'args'"):
        genome_from_dict(leaf)


@pytest.mark.slow
def test_a_verdict_setting_that_changes_the_data_is_refused_before_anything_trains(tmp_path: Path) -> None:
    """Another split seed put 246 of 300 digits test images into the search's own training and
    validation data: a verdict setting may change the model or recipe, never the data (#30.6)."""
    for setting, shown in [
        ("dataset.split_seed=1", "dataset.split_seed: 0 -> 1"),
        ("dataset.val_size=0.2", "dataset.val_size"),
        ("dataset=mnist", "dataset._target_"),
    ]:
        run = tmp_path / setting.replace("=", "_")
        result = run_script("evolve.py", *TINY, f"validate.settings=['{setting}']", f"hydra.run.dir={run}")
        assert result.returncode == 2, result.stderr[-2000:]
        assert f"validate.settings: '{setting}' changes the data" in result.stderr and shown in result.stderr
        assert "Traceback" not in result.stderr and not (run / "journal.sqlite").exists()
    fine = run_script(
        "evolve.py",
        *TINY,
        "search.budget=2",
        "search.initial_population=2",
        "validate.runs=0",
        "validate.settings=['augment=cutout']",
        f"hydra.run.dir={tmp_path / 'ok'}",
    )
    assert fine.returncode == 0, fine.stderr[-2000:]
