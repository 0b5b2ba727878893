"""Training one loss with a recipe, once or over several seeds: what ``train.py`` does.

Each seed is one training (validation and test accuracy); the run folder gets ``results.csv``
(one row per seed, the table ``lossevo stats`` reads) and ``result.yaml`` (the Fitness of a single
run, or the mean ± std over seeds).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from lossevo.analysis.statistics import write_results
from lossevo.config import plain
from lossevo.losses import build_loss
from lossevo.results import Fitness
from lossevo.tracking.tracker import Tracker

log = logging.getLogger("lossevo")


@dataclass
class TrainingOutcome:
    name: str  # the loss's name
    setting: str
    equation: str
    seeds: list[int]
    results: list[Fitness]  # one per seed

    @property
    def finished(self) -> list[Fitness]:
        return [r for r in self.results if r.ok]

    def test_accuracies(self) -> np.ndarray:
        return np.array([r.test_acc for r in self.finished], dtype=float)

    def summary(self) -> dict[str, Any]:
        test = self.test_accuracies()
        val = np.array([r.fitness for r in self.finished], dtype=float)
        return {
            "loss": self.name,
            "setting": self.setting,
            "runs": len(self.seeds),
            "finished": len(self.finished),
            "test_acc_mean": float(test.mean()) if len(test) else None,
            "test_acc_std": float(test.std(ddof=1)) if len(test) > 1 else None,
            "val_acc_mean": float(val.mean()) if len(val) else None,
            "results": [r.to_dict() for r in self.results],
        }


def train_loss(cfg: DictConfig, folder: Path, setting: str) -> TrainingOutcome:
    """Train ``cfg.loss`` with ``cfg``'s recipe ``cfg.seeds`` times (seeds ``seed``, ``seed + 1``, ...),
    writing results.csv and result.yaml to ``folder``."""
    from lossevo.training.surrogate import Job, Surrogate

    folder.mkdir(parents=True, exist_ok=True)
    # A candidate's config.yaml (train.py --config-path <candidate folder>) is one training: no seeds key.
    seeds = [int(cfg.seed) + i for i in range(int(cfg.seeds) if "seeds" in cfg else 1)]
    loss = build_loss(cfg.loss, "loss")
    name = str(cfg.loss.get("name") or type(loss).__name__)
    equation = str(getattr(loss, "equation", name))
    surrogate = Surrogate(cfg)
    log.info("%s", surrogate.data.summary())
    log.info("loss %s", equation)
    tracker = Tracker(
        cfg.get("logger"),
        folder,
        group="train",
        job_type="train",
        name=f"train-{folder.name}",
        config=plain(cfg),
    )
    outcome = TrainingOutcome(name, setting, equation, seeds, [])
    rows = []
    try:
        for seed in seeds:
            root = folder if len(seeds) == 1 else folder / f"seed_{seed}"
            job = Job(loss, seed, "train", None if cfg.get("data_seed") is None else int(cfg.data_seed))
            result = surrogate.train(job, test=True, root_dir=str(root))
            outcome.results.append(result)
            rows.append(
                {
                    "loss": name,
                    "setting": setting,
                    "seed": seed,
                    "status": result.status.value,
                    "val_acc": result.fitness,
                    "test_acc": result.test_acc,
                    "steps": result.steps,
                    "seconds": round(result.seconds, 3),
                    "equation": equation,
                }
            )
            tracker.log({"seed": seed, "val/best_acc": result.fitness, "test/acc": result.test_acc})
            if len(seeds) == 1:
                for step, acc in result.history:
                    tracker.log({"val/acc": acc, "step": step})
        summary = outcome.summary()
        tracker.summary(
            {
                "best_val_acc": summary["val_acc_mean"],
                "test_acc": summary["test_acc_mean"],
                "test_acc_std": summary["test_acc_std"],
                "equation": equation,
            }
        )
    finally:
        tracker.finish()
    write_results(folder / "results.csv", rows)
    data = outcome.results[0].to_dict() if len(seeds) == 1 else outcome.summary()
    (folder / "result.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(data)))
    return outcome
