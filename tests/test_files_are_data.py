"""What a journal, a study journal, a loss file, a ``best_k.yaml`` or a saved command line holds is
data: nothing in them is instantiated or interpolated (#27.1, docs/security.md). A ``_target_`` or
a ``${...}`` written at every depth and position of a genome is refused in one line before any
training is planned, and a marker file that running it would create never appears."""

from __future__ import annotations

import copy
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import OmegaConf

from lossevo.errors import GenomeError, LossevoError
from lossevo.genome import genome_from_dict
from lossevo.genome.files import LOSS_TARGET, read_genome_file
from lossevo.losses import build_loss
from lossevo.losses.nodes import check_stored_loss

from .conftest import TINY, run_script
from .test_hostile import SEARCH, copy_of, one_clear_error

GRAPH = {
    "space": "graph",
    "hidden": [{"op": "ln", "inputs": ["yhat"]}, {"op": "mul", "inputs": ["y", "h0"]}],
    "root": {"op": "neg", "inputs": ["h1"]},
    "sign": 1,
}
TREE = {
    "space": "tree",
    "primitives": "glo",
    "tree": {"op": "mul", "args": [{"leaf": "y"}, {"op": "ln", "args": [{"leaf": "yhat"}], "coef": 2.0}]},
    "sign": 1,
}
TAYLOR = {"space": "taylor", "params": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8], "sign": 1}


def positions(data: Any, path: tuple = ()) -> Iterator[tuple]:
    """The path of every value in ``data``: the whole, each mapping's values, each list's items."""
    yield path
    items = data.items() if isinstance(data, dict) else enumerate(data) if isinstance(data, list) else ()
    for key, value in items:
        yield from positions(value, (*path, key))


def crafted(genome: dict, payload: Any) -> Iterator[tuple[str, dict]]:
    """Copies of ``genome`` with ``payload`` as each value, as an extra ``_target_`` mapping key and
    as an extra list item, at every depth."""
    for path in positions(genome):
        if not path:
            continue
        copied = copy.deepcopy(genome)
        parent = copied
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = payload
        yield f"{'.'.join(map(str, path))} replaced", copied
        target = copy.deepcopy(genome)
        node = target
        for key in path:
            node = node[key]
        if isinstance(node, dict):
            node.update(payload if isinstance(payload, dict) else {"_target_": payload})
            yield f"{'.'.join(map(str, path))} given a _target_", target
        elif isinstance(node, list):
            node.append(payload)
            yield f"{'.'.join(map(str, path))} given an item", target
    whole = copy.deepcopy(genome)
    whole.update(payload if isinstance(payload, dict) else {"_target_": payload})
    yield "top level given a _target_", whole


@pytest.fixture
def marker(tmp_path: Path) -> Iterator[Path]:
    """A file that appears if anything runs: a ``_target_`` that touches it, and a resolver
    ``${touch_marker:}`` that touches it when interpolated."""
    path = tmp_path / "it-ran"

    def touch() -> str:
        path.touch()
        return "yhat"

    OmegaConf.register_new_resolver("touch_marker", touch, replace=True)
    yield path
    OmegaConf.clear_resolver("touch_marker")


@pytest.mark.parametrize("genome", [GRAPH, TREE, TAYLOR], ids=["graph", "tree", "taylor"])
def test_code_or_an_interpolation_at_any_depth_of_a_genome_is_refused_and_nothing_runs(
    genome: dict, marker: Path, tmp_path: Path
) -> None:
    genome_from_dict(genome)  # the untouched genome is fine
    payloads = [{"_target_": "pathlib.Path.touch", "self": str(marker)}, "${touch_marker:}"]
    cases = [case for payload in payloads for case in crafted(genome, payload)]
    assert len(cases) >= 16, len(cases)
    for where, bad in cases:
        with pytest.raises(GenomeError):
            genome_from_dict(bad)
        node = {"_target_": LOSS_TARGET, "name": "crafted", "genome": bad}
        for form in (node, OmegaConf.create(node)):
            with pytest.raises(LossevoError):
                build_loss(form, "loss")
        with pytest.raises(GenomeError):
            check_stored_loss(node)
        for suffix, text in ((".json", json.dumps(node)), (".yaml", yaml.safe_dump(node))):
            path = tmp_path / f"loss{suffix}"
            path.write_text(text)
            with pytest.raises(GenomeError):
                read_genome_file(path)
        assert not marker.exists(), f"{where}: it ran"


def test_a_loss_config_around_a_genome_may_name_only_the_genome_loss(marker: Path, tmp_path: Path) -> None:
    for node in (
        {"_target_": "pathlib.Path.touch", "self": str(marker), "genome": GRAPH},
        {"_target_": LOSS_TARGET, "genome": GRAPH, "label_smoothing": "${touch_marker:}"},
        {"_target_": LOSS_TARGET, "genome": GRAPH, "extra": {"_target_": "pathlib.Path.touch"}},
        {"_target_": LOSS_TARGET, "genome": GRAPH, "name": {"_target_": "pathlib.Path.touch"}},
    ):
        path = tmp_path / "best_1.yaml"
        path.write_text(yaml.safe_dump(node))
        with pytest.raises(GenomeError):
            read_genome_file(path)
        assert not marker.exists()
    assert read_genome_file(_written(tmp_path, {"_target_": LOSS_TARGET, "genome": GRAPH})).genome


def test_a_stored_named_loss_must_be_a_registered_one() -> None:
    check_stored_loss({"_target_": "lossevo.losses.get_loss", "name": "cross_entropy"})
    for node in (
        {"_target_": "lossevo.losses.get_loss", "name": "no_such_loss"},
        {"_target_": "lossevo.losses.get_loss", "name": "focal", "gamma": {"_target_": "os.getcwd"}},
        {"_target_": "os.system", "name": "cross_entropy"},
    ):
        with pytest.raises(GenomeError):
            check_stored_loss(node)


def _written(folder: Path, node: dict) -> Path:
    path = folder / "ok.yaml"
    path.write_text(yaml.safe_dump(node))
    return path


SMALL = [*SEARCH, "search.budget=2", "search.initial_population=2"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished")
    result = run_script("evolve.py", *SMALL, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def _craft_journal(run_dir: Path, change: Any) -> None:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        (cid, text) = db.execute("SELECT id, genome FROM candidates ORDER BY id LIMIT 1").fetchone()
        genome = json.loads(text)
        assert genome["space"] == "graph"
        change(genome)
        db.execute("UPDATE candidates SET genome = ? WHERE id = ?", (json.dumps(genome), cid))


def _resumed_after(finished: Path, tmp_path: Path, sql: str) -> tuple[Path, subprocess.CompletedProcess]:
    """A copy of the finished search with ``sql`` applied to its journal, then resumed."""
    run_dir = copy_of(finished, tmp_path)
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        db.execute(sql)
    return run_dir, run_script("evolve.py", *SMALL, f"hydra.run.dir={run_dir}")


def _trained(run_dir: Path) -> list[tuple]:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return [*db.execute("SELECT * FROM validation"), *db.execute("SELECT id, status FROM candidates")]


@pytest.mark.slow
def test_a_journal_that_names_code_runs_nothing_and_trains_nothing(finished: Path, tmp_path: Path) -> None:
    marker = tmp_path / "it-ran"
    run_dir = copy_of(finished, tmp_path)
    _craft_journal(
        run_dir,
        lambda g: g["hidden"][0]["inputs"].__setitem__(
            0, {"_target_": "pathlib.Path.touch", "self": str(marker)}
        ),
    )
    before = _trained(run_dir)
    result = run_script("validate.py", f"run={run_dir}", "runs=2", f"hydra.run.dir={tmp_path / 'v'}")
    one_clear_error(result, "candidate 1 is not one a search writes")
    assert "nothing was run or trained" in result.stderr
    assert not marker.exists() and _trained(run_dir) == before
    # An interpolation is data too: shown as written, never resolved (HOME is not read).
    run_dir = copy_of(finished, tmp_path / "second")
    _craft_journal(run_dir, lambda g: g["root"].__setitem__("op", "${oc.env:HOME}"))
    before = _trained(run_dir)
    resumed = run_script("evolve.py", *SMALL, f"hydra.run.dir={run_dir}")
    one_clear_error(resumed, "'${oc.env:HOME}' is not a plain name")
    assert _trained(run_dir) == before


@pytest.mark.slow
def test_a_saved_command_line_that_names_code_is_refused(finished: Path, tmp_path: Path) -> None:
    marker = tmp_path / "it-ran"
    run_dir = copy_of(finished, tmp_path)
    saved = run_dir / ".hydra" / "overrides.yaml"
    ours = yaml.safe_load(saved.read_text())
    for extra in (
        ["loss._target_=pathlib.Path.touch", f"+loss.self={marker}"],
        ["executor=slurm", "executor.cluster=local", f"executor.setup=['touch {marker}']"],
        [f"hydra.searchpath=[file://{tmp_path}]"],
        ["seed=${oc.env:HOME}"],
    ):
        saved.write_text(yaml.safe_dump([*ours, *extra]))
        result = run_script("validate.py", f"run={run_dir}", "runs=1", f"hydra.run.dir={tmp_path / 'v'}")
        one_clear_error(result, "which would run code or read the environment")
        assert not marker.exists()


@pytest.mark.slow
def test_a_study_journal_that_names_code_runs_nothing(tmp_path: Path) -> None:
    from lossevo.analysis.study import StudyJournal, StudyLoss

    marker = tmp_path / "it-ran"
    run_dir = tmp_path / "study"
    run_dir.mkdir()
    with StudyJournal(run_dir) as journal:
        evil = {"_target_": "pathlib.Path.touch", "self": str(marker)}
        journal.add_losses([StudyLoss(1, "cross_entropy", "named", evil, "L")])
    study = [
        *TINY,
        "surrogate.steps=10",
        "surrogate.val_every=10",
        "losses.names=[cross_entropy]",
        "settings=[base]",
        f"hydra.run.dir={run_dir}",
    ]
    one_clear_error(run_script("correlate.py", *study), "study.sqlite's loss 1 is not one a study writes")
    assert not marker.exists()
    with StudyJournal(run_dir) as journal:
        assert journal.results() == []


@pytest.mark.slow
def test_a_loss_file_that_names_code_runs_nothing(finished: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    from .conftest import ROOT, script_env

    marker = tmp_path / "it-ran"
    run_dir = copy_of(finished, tmp_path)
    best = run_dir / "conf" / "loss" / "best_1.yaml"
    node = yaml.safe_load(best.read_text())
    node["genome"]["root"]["inputs"] = [{"_target_": "pathlib.Path.touch", "self": str(marker)}]
    best.write_text(yaml.safe_dump(node))
    for args in (["show", str(best)], ["export", str(run_dir), "--out", str(tmp_path / "x.py")]):
        result = subprocess.run(
            [sys.executable, "-m", "lossevo", *args],
            cwd=ROOT,
            env=script_env(),
            capture_output=True,
            text=True,
        )
        one_clear_error(result, "best_1.yaml': node root: 'inputs' must be a list of names")
    trained = run_script(
        "train.py", *TINY, "loss=file", f"loss.path={best}", f"hydra.run.dir={tmp_path / 't'}"
    )
    one_clear_error(trained, "best_1.yaml': node root: 'inputs' must be a list of names")
    assert not marker.exists()


@pytest.mark.slow
def test_a_journal_equation_cannot_add_a_key_to_best_k_yaml(finished: Path, tmp_path: Path) -> None:
    """#27.10: the header comment is the genome's own equation, not the journal's text."""
    run_dir, result = _resumed_after(
        finished, tmp_path, "UPDATE candidates SET equation = 'L = y' || char(10) || 'label_smoothing: 0.9'"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    written = sorted((run_dir / "conf" / "loss").glob("best_*.yaml"))
    assert written
    for path in written:
        assert "label_smoothing" not in yaml.safe_load(path.read_text())
        assert read_genome_file(path).label_smoothing == 0.0


def test_genome_files_that_would_blow_up_are_refused_in_one_line(tmp_path: Path) -> None:
    """#27.4-6: a billion-laughs YAML, a DAG whose written-out form has 2^60 terms, a 900-node
    chain and numbers past float's range each end in one GenomeError, quickly."""
    laughs = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    dag = [{"op": "add", "inputs": ["y", "yhat"]}]
    dag += [{"op": "add", "inputs": [f"h{i}", f"h{i}"]} for i in range(59)]
    chain = [{"op": "ln", "inputs": ["yhat"]}] + [{"op": "neg", "inputs": [f"h{i}"]} for i in range(899)]

    def graph_file(hidden: list) -> str:
        root = {"op": "mul", "inputs": [f"h{len(hidden) - 1}", "y"]}
        return json.dumps({"space": "graph", "hidden": hidden, "root": root})

    huge = '{"space": "taylor", "params": [1, 2, 3, 4, 5, 6, 7, ' + "9" * 400 + "]}"
    files = {
        "laughs.yaml": ("\n".join(laughs), "anchors and aliases"),
        "dag.json": (graph_file(dag), "more than 10,000 terms written out"),
        "chain.json": (graph_file(chain), "900 hidden nodes"),
        "huge.json": (huge, "not a finite number"),
        "inf.yaml": (
            "{space: tree, primitives: glo, tree: {op: mul, args: [{leaf: y}, {const: 1e400}]}}",
            "must be a number|not a finite number",
        ),
    }
    for name, (text, message) in files.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(GenomeError, match=message):
            read_genome_file(path)


@pytest.mark.slow
def test_a_journal_phase_that_is_not_a_name_is_refused(finished: Path, tmp_path: Path) -> None:
    """#27.12: a NUL (or any text) in a candidate's phase, which names folders, logs and W&B keys."""
    _, result = _resumed_after(
        finished, tmp_path, "UPDATE candidates SET phase = 'initial' || char(0) || 'x' WHERE id = 1"
    )
    one_clear_error(result, "candidate 1 is not one a search writes (its phase")
