"""Driver overhead per candidate outside training: config composition, journal and strategy.

Runs a real search (regularized evolution over the graph space, paper-sized tournament and a
population of ``--population``) through the real driver, journal and inline executor on digits
with a one-step surrogate, and times every part of the per-candidate path: the strategy
(ask + tell, integrity checks and novelty against the population included), the journal writes,
the candidate config (merge + resolve + config.yaml) and the training itself. Overhead = the
search's wall time minus training, per candidate. Target: <= 50 ms.

    python benchmarks/bench_driver.py [--budget 300] [--population 100] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("WANDB_MODE", "disabled")

from lossevo.config import CONF_DIR, compose_config
from lossevo.config.composer import ConfigComposer
from lossevo.execution import executors
from lossevo.search.driver import Driver
from lossevo.store.journal import Journal

TIMES: dict[str, float] = defaultdict(float)


def timed(owner: object, name: str, bucket: str) -> None:
    """Wrap ``owner.name`` so its time adds to ``bucket`` (instrumentation, not a replacement)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TIMES[bucket] += time.perf_counter() - start

    setattr(owner, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds: checks the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.budget, args.population = 12, 6
    overrides = [
        "dataset=digits",
        "logger=none",
        "trainer.accelerator=cpu",
        "surrogate.steps=1",
        "surrogate.val_every=1",
        "surrogate.batch_size=16",
        "surrogate.precheck.step=null",
        "surrogate.early_stop.step=null",
        "surrogate.schedule.warmup_steps=0",
        f"search.budget={args.budget}",
        f"search.initial_population={args.population}",
        f"search.population_size={args.population}",
        f"search.tournament_size={min(20, args.population)}",
        "search.fidelity.rungs=null",  # the single-fidelity path: one training per candidate
        "validate.runs=0",
    ]
    cfg = compose_config("evolve", overrides)
    for method in ("add_candidate", "mark_running", "finish_candidate"):
        timed(Journal, method, "journal")
    timed(executors, "evaluate_group", "evaluate (loss build + training)")
    timed(ConfigComposer, "training", "training config (copy + values)")
    timed(Driver, "_candidate_task", "candidate task (configs + yaml)")
    with tempfile.TemporaryDirectory() as tmp:
        composer = ConfigComposer(cfg, "evolve", overrides)
        from hydra import initialize_config_dir

        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            search = Driver(cfg, Path(tmp), composer)
            for method in ("ask", "tell"):
                timed(search.strategy, method, "strategy (ask + tell)")
            start = time.perf_counter()
            outcome = search.run()
            wall = time.perf_counter() - start
    n = outcome.evaluated
    training = TIMES["evaluate (loss build + training)"]
    overhead = (wall - training) / n
    print(f"{n} candidates, wall {wall:.2f}s, training {training:.2f}s (one step each)")
    for bucket in sorted(TIMES):
        print(f"  {bucket:45s} {1000 * TIMES[bucket] / n:8.2f} ms/candidate")
    print(f"driver overhead per candidate (wall - training) / n: {1000 * overhead:.2f} ms")
    print(f"ratio overhead / 50 ms target: {overhead / 0.050:.3f}")


if __name__ == "__main__":
    main()
