"""`lossevo dashboard`: the W&B workspace of a search or study, built offline with wandb-workspaces."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, TINY, run_script, script_env

pytest.importorskip("wandb_workspaces")


def offline_env(tmp_path: Path) -> dict[str, str]:
    """No W&B key anywhere: the dashboard must be written, not uploaded."""
    env = script_env(wandb=True, HOME=str(tmp_path / "home"), NETRC=str(tmp_path / "home" / ".netrc"))
    env.pop("WANDB_BASE_URL", None)
    return env


def dashboard(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lossevo", "dashboard", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def panels(view: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    sections = view["spec"]["section"]["panelBankConfig"]["sections"]
    return {s["name"]: s["panels"] for s in sections}


def table_names(panel: dict[str, Any]) -> list[str]:
    """The run-summary table a Weave table panel picks (its ``key`` constant)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            key = node.get("key")
            if isinstance(key, dict) and key.get("nodeType") == "const":
                found.append(key["val"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(panel.get("config", {}))
    return found


@pytest.mark.slow
def test_a_search_folder_gives_fitness_candidates_and_verdict_panels(tmp_path: Path) -> None:
    run_dir = tmp_path / "my-search"
    search = run_script(
        "evolve.py",
        *TINY,
        "search.budget=2",
        "search.initial_population=2",
        "search.fidelity.rungs=[60]",
        "validate.runs=2",
        "validate.top_k=1",
        f"hydra.run.dir={run_dir}",
    )
    assert search.returncode == 0, search.stderr[-2000:]
    result = dashboard(str(run_dir), env=offline_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert str(run_dir / "dashboard.json") in result.stdout
    view = json.loads((run_dir / "dashboard.json").read_text())
    assert view["project"] == "lossevo" and view["displayName"] == "lossevo my-search"
    (runset,) = view["spec"]["section"]["runSets"]
    assert runset["filters"]["filters"] == [
        {"key": {"section": "run", "name": "group"}, "op": "=", "value": "my-search", "disabled": False}
    ]
    found = panels(view)
    assert list(found) == ["Search", "Candidates", "Verdict"]  # no study in a search folder
    fitness = found["Search"][0]["config"]
    assert fitness["xAxis"] == "candidate/id"
    assert fitness["metrics"] == ["candidate/fitness", "search/best_fitness", "search/reference_fitness"]
    assert [t for p in found["Candidates"] for t in table_names(p)] == ["candidates", "top_candidates"]
    note, *_, media = found["Candidates"]
    assert media["config"]["mediaKeys"] == ["phenotypes", "fitness"]
    assert note["viewType"] == "Markdown Panel" and "artifact `losses-my-search`" in note["config"]["value"]
    verdict = found["Verdict"]
    assert verdict[0]["viewType"] == "Markdown Panel"
    assert verdict[0]["config"]["value"] == (run_dir / "verdict.md").read_text()
    tables = [t for p in verdict[1:] for t in table_names(p)]
    assert tables == ["validation", "comparisons", "faithfulness", "cost"]


def test_a_group_name_gives_every_section_including_kendall_heatmaps(tmp_path: Path) -> None:
    out = tmp_path / "view.json"
    result = dashboard(
        "sweep-7", "--project", "losses", "--entity", "lab", "-o", str(out), env=offline_env(tmp_path)
    )
    assert result.returncode == 0, result.stderr
    view = json.loads(out.read_text())
    assert (view["entity"], view["project"]) == ("lab", "losses")
    found = panels(view)
    assert list(found) == ["Search", "Candidates", "Verdict", "Rank correlation"]
    note = found["Candidates"][0]["config"]["value"]  # the search's best losses: its artifact, linked
    assert "[losses-sweep-7](https://wandb.ai/lab/losses/artifacts/loss/losses-sweep-7)" in note
    assert "lossevo train loss=wandb:lab/losses/losses-sweep-7:latest" in note
    heatmaps, *tables = found["Rank correlation"]
    assert heatmaps["config"]["mediaKeys"] == ["kendall_heatmap", "scatter"]  # one key per object
    assert [t for p in tables for t in table_names(p)] == ["kendall", "accuracy", "elimination"]


def test_a_folder_that_is_no_run_is_one_error(tmp_path: Path) -> None:
    result = dashboard(str(tmp_path), env=offline_env(tmp_path))
    assert result.returncode == 2
    assert "holds no journal.sqlite or study.sqlite" in result.stderr and "Traceback" not in result.stderr
