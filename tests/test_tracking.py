"""W&B tracking: offline without a key, and a W&B failure never reaches the caller."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from lossevo.tracking.tracker import Tracker, resolve_mode


@pytest.fixture
def no_wandb_env(monkeypatch, tmp_path: Path) -> None:
    for key in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))


def test_mode_resolution(no_wandb_env, monkeypatch) -> None:
    assert resolve_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert resolve_mode("online") == "disabled"


def test_a_wandb_error_disables_tracking_instead_of_raising(no_wandb_env, tmp_path: Path) -> None:
    cfg = OmegaConf.create({"mode": "auto", "project": "lossevo-test", "entity": None, "tags": []})
    tracker = Tracker(cfg, tmp_path, group="g", job_type="search", name="t")
    assert tracker.active and tracker.mode == "offline"
    tracker.log({"candidate/fitness": 0.5}, step=1)
    tracker.run.finish()  # the run ends under the tracker's feet: the next calls fail inside wandb
    tracker.log({"candidate/fitness": 0.6}, step=2)
    assert not tracker.active, "the failed call turned tracking off"
    tracker.table("candidates", ["id"], [[1]])
    tracker.finish()
    assert not tracker.active
    assert list((tmp_path / "wandb").glob("offline-run-*/*.wandb"))


def test_disabled_tracker_is_a_no_op(tmp_path: Path) -> None:
    tracker = Tracker(OmegaConf.create({"mode": "disabled"}), tmp_path, group="g", job_type="search")
    tracker.log({"a": 1})
    tracker.summary({"b": 2})
    tracker.finish()
    assert not (tmp_path / "wandb").exists()


def test_wandb_sweep_files_compose_as_hydra_command_lines(tmp_path: Path) -> None:
    """A W&B agent runs `python -m lossevo <entry> key=value ...` (args_no_hyphens): every grid point
    composes, and the command works where lossevo is only installed (from another folder)."""
    import itertools
    import subprocess
    import sys

    import yaml

    from lossevo.cli.main import HYDRA_COMMANDS
    from lossevo.config import compose_config

    from .conftest import ROOT, script_env

    paths = sorted((ROOT / "sweeps" / "wandb").glob("*.yaml"))
    assert [p.name for p in paths] == ["augmentations.yaml", "table5_cpu.yaml"], (
        "the files sweeps/README.md lists"
    )
    for path in paths:
        sweep = yaml.safe_load(path.read_text())
        *head, entry, args = sweep["command"]
        assert head == ["${env}", "${interpreter}", "-m", "lossevo"] and args == "${args_no_hyphens}"
        assert entry in HYDRA_COMMANDS and "program" not in sweep, "no script of a clone"
        # It names its project and optimises what the runs measure on test data: a search's
        # verdict (not its rung-0 validation fitness), a training's test accuracy.
        metric = {"evolve": "verdict/best_1/test_acc", "train": "test_acc"}[entry]
        assert sweep["project"] == "lossevo" and sweep["metric"] == {"name": metric, "goal": "maximize"}
        params = sweep["parameters"]
        axes = [
            [(k, v) for v in p["values"]] if "values" in p else [(k, p["value"])] for k, p in params.items()
        ]
        points = [[f"{k}={v}" for k, v in point] for point in itertools.product(*axes)]
        assert len(points) > 1
        for point in points:
            assert compose_config(entry, point) is not None
        command = [sys.executable, "-m", "lossevo", entry, *points[-1], "--cfg", "job"]
        shown = subprocess.run(
            command, cwd=tmp_path, env=script_env(), capture_output=True, text=True, timeout=120
        )
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert all(p.split("=")[1] in shown.stdout for p in points[-1])


def test_a_self_hosted_server_with_a_key_counts_as_online(no_wandb_env, monkeypatch, tmp_path: Path) -> None:
    """`wandb login --host https://wandb.lab.org` writes the key under that host in ~/.netrc."""
    netrc = tmp_path / "home" / ".netrc"
    netrc.parent.mkdir(parents=True, exist_ok=True)
    netrc.write_text("machine wandb.lab.org\n  login user\n  password " + "k" * 40 + "\n")
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.lab.org")
    assert resolve_mode("auto") == "online"
    monkeypatch.setenv("WANDB_BASE_URL", "https://other.example.com")
    assert resolve_mode("auto") == "offline"  # a key for another server is no key for this one
    monkeypatch.delenv("WANDB_BASE_URL")
    assert resolve_mode("auto") == "offline"
    netrc.write_text("machine api.wandb.ai login user password " + "k" * 40 + "\n")
    assert resolve_mode("auto") == "online"


def test_run_folders_name_their_wandb_group(tmp_path: Path) -> None:
    """Hydra's default folders are named by time: the date joins it (every day has a 10-00-00)."""
    from lossevo.tracking.tracker import group_for

    assert group_for(tmp_path / "outputs" / "evolve" / "2026-11-24" / "10-00-00") == "2026-11-24_10-00-00"
    assert group_for(tmp_path / "outputs" / "my-search") == "my-search"
    # The seeds of one multirun are one group; each job's artifact keeps a name of its own.
    from lossevo.tracking.artifacts import artifact_name
    from lossevo.tracking.tracker import run_label

    sweep = tmp_path / "multirun-evolve" / "2026-11-24" / "10-00-00"
    (sweep / "search-random__seed-0").mkdir(parents=True)
    (sweep / "multirun.yaml").write_text("{}")
    jobs = [sweep / "search-random__seed-0", sweep / "search-random__seed-1"]
    assert {group_for(job) for job in jobs} == {"2026-11-24_10-00-00"}
    assert [artifact_name(run_label(job)) for job in jobs] == [
        "losses-2026-11-24_10-00-00_search-random__seed-0",
        "losses-2026-11-24_10-00-00_search-random__seed-1",
    ]
    assert run_label(tmp_path / "outputs" / "my-search") == "my-search"


def test_logger_none_stays_off_whatever_wandb_mode_says(no_wandb_env, monkeypatch) -> None:
    """#27.9: the config wins; the environment can switch tracking off, never on against it."""
    for env in ("online", "offline"):
        monkeypatch.setenv("WANDB_MODE", env)
        assert resolve_mode("disabled") == "disabled"
        assert resolve_mode("auto") == env
    monkeypatch.setenv("WANDB_MODE", "online")
    assert resolve_mode("offline") == "offline"
