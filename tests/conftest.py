"""Shared fixtures: real Hydra composition of the project's configs, W&B off unless a test asks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from omegaconf import DictConfig

from lossevo.config import compose_config

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"
__all__ = ["CONF", "ROOT", "TINY", "compose_config", "run_script", "script_command", "script_env"]

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

# A surrogate small enough for tests: digits, a few dozen steps.
TINY = [
    "dataset=digits",
    "surrogate.steps=60",
    "surrogate.val_every=30",
    "surrogate.batch_size=32",
    "surrogate.precheck.step=null",
    "surrogate.early_stop.step=null",
    "surrogate.schedule.warmup_steps=5",
    "trainer.accelerator=cpu",
    "logger=none",
]


@pytest.fixture
def tiny_cfg() -> DictConfig:
    return compose_config("evolve", TINY)


def script_env(wandb: bool = False, **extra: str) -> dict[str, str]:
    """Environment for an entry script: W&B disabled, or (``wandb=True``) left to decide by itself."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled", **extra}
    if wandb:
        for key in ("WANDB_MODE", "WANDB_API_KEY"):
            env.pop(key, None)
    return env


def script_command(script: str, *args: str) -> list[str]:
    return [sys.executable, str(ROOT / script), *args]


def run_script(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess:
    """Run an entry script through the real CLI, from the repository root."""
    return subprocess.run(
        script_command(script, *args),
        cwd=ROOT,
        env=env or script_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def verdict_phase(journal: Any, overrides: list[str]) -> Any:
    """The verdict's trainings of a finished search, rebuilt from its journal and the search's own
    overrides with its real composition (what a resumed search would plan)."""
    from lossevo.config.composer import ConfigComposer
    from lossevo.config.settings import SearchSettings
    from lossevo.execution.objectives import Objective
    from lossevo.execution.retries import Retries
    from lossevo.verdict.phase import ValidationPhase
    from lossevo.verdict.plan import ValidationPlan

    cfg = compose_config("evolve", overrides)
    plan = ValidationPlan.load(journal)
    assert plan is not None, "the search planned no verdict"
    return ValidationPhase(
        plan,
        journal,
        ConfigComposer(cfg, "evolve", overrides),
        Objective.from_config(cfg.objective),
        int(cfg.seed),
        0.0,
        Retries(SearchSettings.from_config(cfg).driver),
    )
