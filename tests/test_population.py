"""Population training: a member trained among K others ends as it would alone (float64), a
broken member never touches the others, and a search gives the same journal with any K."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from lossevo.config.settings import group_size
from lossevo.errors import LossevoError
from lossevo.losses import get_loss
from lossevo.results import Status, StopReason
from lossevo.training.population import stacking_problem
from lossevo.training.surrogate import Job, Surrogate

from .conftest import ROOT, TINY, compose_config, script_command, script_env
from .test_surrogate import Constant, NaNAfter

LOSSES = ("cross_entropy", "focal", "baikal", "cross_entropy")


def members() -> list[nn.Module]:
    """Four losses; the last one label-smoothed (members smooth their own targets)."""
    return [get_loss(n, label_smoothing=0.1 if k == 3 else 0.0) for k, n in enumerate(LOSSES)]


class Raises(nn.Module):
    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this loss is broken")


def surrogate(*overrides: str) -> Surrogate:
    steps = ["surrogate.steps=40", "surrogate.val_every=20", "trainer.precision=64-true"]
    return Surrogate(compose_config("train", [*TINY, *steps, *overrides]))


def alone(s: Surrogate, job: Job) -> tuple[dict[str, torch.Tensor], object]:
    module = s.module(job.loss, job.seed, job.data)
    s.trainer().fit(module, train_dataloaders=s.batches(job.data), val_dataloaders=s._val)
    if module.history[-1][0] != module.global_step and module.stop_reason != StopReason.NONFINITE:
        s.trainer().validate(module, dataloaders=s._val, verbose=False)
    return module.model.state_dict(), module


def jobs(losses: list[nn.Module], seeds: list[int] | None = None) -> list[Job]:
    """One data seed, each member its own init seed (100, 101, ... unless given)."""
    seeds = seeds or [100 + i for i in range(len(losses))]
    return [
        Job(loss, seed, f"member {i}", data_seed=7)
        for i, (loss, seed) in enumerate(zip(losses, seeds, strict=True))
    ]


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=convnet"],
        ["model=resnet9v2_small", "augment=mixup"],
        ["model=convnet", "trainer.channels_last=false"],
    ],
    ids=["convnet", "resnet9v2_small-mixup", "convnet-contiguous"],
)
def test_a_member_ends_as_it_would_alone(overrides: list[str]) -> None:
    s = surrogate(*overrides)
    module = s._population_pass(jobs(members()))
    # (a layer with one input channel per group is laid out the same either way)
    convs = [m.weight for m in module.stack.modules() if isinstance(m, nn.Conv2d) and m.weight.shape[1] > 1]
    assert convs and all((not w.is_contiguous()) == s.trainer_settings.channels_last for w in convs), (
        "the members' layout is the one a lone training uses"
    )
    results = module.results(0.0)
    assert len(results) == 4 and all(r.ok for r in results)
    for k, job in enumerate(jobs(members())):
        weights, lone = alone(s, job)
        member = module.member_state(k)
        assert set(member) == set(weights), "every parameter and buffer has its member's slice"
        worst = max((member[n].double() - weights[n].double()).abs().max().item() for n in member)
        assert worst < 1e-6, f"member {k} ({LOSSES[k]}) drifted from its lone training by {worst}"
        assert results[k].fitness == lone.best_val_acc and results[k].history == lone.history
        assert results[k].train_acc == pytest.approx(lone.train_acc, abs=1e-12)
    # Members really differ (own init seeds, own losses): the check above is not vacuous.
    assert len({round(r.fitness, 6) for r in results[:3]}) > 1 or results[0].history != results[3].history
    first, last = module.member_state(0), module.member_state(3)
    assert any(not torch.equal(first[n], last[n]) for n in first), "same loss, other init: other weights"


def test_a_broken_member_never_touches_the_others() -> None:
    s = surrogate("model=convnet", "surrogate.check_every=5")
    healthy = s._population_pass(jobs([get_loss("cross_entropy"), get_loss("focal")], [100, 103]))
    mixed = s._population_pass(jobs([get_loss("cross_entropy"), NaNAfter(10), Raises(), get_loss("focal")]))
    a, nan, broken, b = mixed.results(0.0)
    assert (
        nan.status == Status.FAILED and nan.stop_reason == StopReason.NONFINITE and nan.steps == 15
    )  # first check after step 11
    assert broken.status == Status.FAILED and broken.stop_reason == StopReason.ERROR
    assert "this loss is broken" in broken.detail
    for k_mixed, k_healthy, result in ((0, 0, a), (3, 1, b)):
        expected = healthy.results(0.0)[k_healthy]
        assert result.ok and result.history == expected.history and result.fitness == expected.fitness
        got, want = mixed.member_state(k_mixed), healthy.member_state(k_healthy)
        assert all(torch.isfinite(got[n]).all() for n in got if got[n].is_floating_point())
        assert max((got[n].double() - want[n].double()).abs().max().item() for n in got) < 1e-9


def test_members_keep_their_own_rules_and_stop_where_they_stopped() -> None:
    rules = [
        "surrogate.precheck.step=20",
        "surrogate.precheck.min_train_acc=0.2",
        "surrogate.train_acc_window=10",
    ]
    s = surrogate("model=convnet", *rules)
    module = s._population_pass(jobs([get_loss("cross_entropy"), Constant()]))
    learns, stuck = module.results(0.0)
    assert learns.ok and learns.steps == 40 and learns.stop_reason == StopReason.COMPLETED
    assert stuck.status == Status.FAILED and stuck.stop_reason == StopReason.PRECHECK and stuck.steps == 20
    weights, lone = alone(s, jobs([get_loss("cross_entropy"), Constant()])[1])
    assert lone.stop_reason == StopReason.PRECHECK and stuck.history == lone.history
    member = module.member_state(1)
    assert max((member[n].double() - weights[n].double()).abs().max().item() for n in member) < 1e-6, (
        "a frozen member keeps the weights it stopped with"
    )


def test_models_that_cannot_be_stacked_say_why_and_train_one_at_a_time() -> None:
    class ReadsItsWeights(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(4, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            scale = float(self.linear.weight.abs().max())  # a Python number from its own weights
            return self.linear(x) / scale

    sample = torch.ones(2, 4)
    adam = torch.optim.Adam
    assert stacking_problem(ReadsItsWeights, sample, adam, "32-true") is not None
    assert stacking_problem(lambda: nn.Linear(4, 2), sample, adam, "32-true") is None
    assert "LBFGS" in stacking_problem(lambda: nn.Linear(4, 2), sample, torch.optim.LBFGS, "32-true")
    assert "fp16" in stacking_problem(lambda: nn.Linear(4, 2), sample, adam, "16-mixed")
    s = surrogate("model=convnet", "surrogate.optimizer._target_=torch.optim.LBFGS", "surrogate.steps=4")
    results = s.train_population(jobs([get_loss("cross_entropy"), get_loss("focal")]))
    assert s.stacking_problem() and len(results) == 2, "trained one at a time, each with its result"


def test_population_setting_is_checked() -> None:
    assert group_size(compose_config("evolve", [*TINY, "surrogate.population=8"])) == 8
    assert group_size(compose_config("evolve", [*TINY, "surrogate.population=auto"])) == (
        32 if torch.cuda.is_available() else 1
    )
    for bad in ("0", "many"):
        with pytest.raises(LossevoError, match=r"surrogate\.population"):
            group_size(compose_config("evolve", [*TINY, f"surrogate.population={bad}"]))


# float64: in float32 a grouped convolution rounds differently, which can move an image across
# the decision boundary.
SEARCH = [
    *TINY,
    "search.budget=8",
    "search.initial_population=4",
    "surrogate.steps=60",
    "trainer.precision=64-true",
    "trainer.threads=1",  # as in a local worker: float64 sums still round by thread count
    "validate.runs=2",
    "validate.baselines=[reference,poly1]",
]


def journal(run_dir) -> dict[str, list[tuple]]:
    with sqlite3.connect(run_dir / "journal.sqlite") as db:
        return {
            "candidates": db.execute(
                "SELECT id, key, status, fitness, stop_reason FROM candidates ORDER BY id"
            ).fetchall(),
            "rungs": db.execute(
                "SELECT candidate_id, rung, fitness FROM rungs ORDER BY candidate_id, rung"
            ).fetchall(),
            "reference": db.execute(
                "SELECT name, rung, fitness FROM reference ORDER BY name, rung"
            ).fetchall(),
            "validation": db.execute(
                "SELECT loss, run, fitness FROM validation ORDER BY loss, run"
            ).fetchall(),
        }


def search(run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = script_command("evolve.py", *SEARCH, *overrides, f"hydra.run.dir={run_dir}")
    done = subprocess.run(command, cwd=ROOT, env=script_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


@pytest.fixture(scope="module")
def population_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A float64 search with 4 candidates per pass, run once for the tests below."""
    run_dir = tmp_path_factory.mktemp("population") / "run"
    done = search(run_dir, "surrogate.population=4")
    assert "in one pass" in done.stdout + done.stderr, "K = 4 trained populations"
    return run_dir


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [["surrogate.population=1"], ["surrogate.population=4", "executor=local", "executor.workers=1"]],
    ids=["one-at-a-time", "local-worker"],
)
def test_a_search_gives_the_same_journal_with_any_population(
    population_run: Path, overrides: list[str], tmp_path: Path
) -> None:
    """K is a throughput knob: candidates, promotions, reference and verdict are the same (and
    a group of candidates is one evaluation on a worker process like in the driver's)."""
    done = search(tmp_path / "run", *overrides)
    if "surrogate.population=1" in overrides:
        assert "in one pass" not in done.stdout + done.stderr, "one at a time"
    runs = {"K=4": journal(population_run), "other": journal(tmp_path / "run")}
    assert len(runs["K=4"]["candidates"]) == 8 and runs["K=4"]["validation"], (
        "a whole search, verdict included"
    )
    for table in runs["K=4"]:
        assert runs["other"][table] == runs["K=4"][table], table
    with sqlite3.connect(population_run / "journal.sqlite") as db:
        seeds = db.execute("SELECT seed, data_seed FROM rungs WHERE rung = 0").fetchall()
        (reference_data,) = db.execute("SELECT data_seed FROM reference WHERE rung = 0").fetchone()
    assert len({seed for seed, _ in seeds}) == 8, "the journal records each candidate's own init seed"
    assert {data for _, data in seeds} == {reference_data}, "and the batches every loss shared at rung 0"


@pytest.mark.slow
def test_a_killed_population_search_resumes_to_the_same_journal(population_run: Path, tmp_path: Path) -> None:
    """SIGKILL inside a pass: every unfinished member is trained again on resume, nothing else."""
    run_dir = tmp_path / "run"
    log = tmp_path / "output.log"
    command = script_command("evolve.py", *SEARCH, "surrogate.population=4", f"hydra.run.dir={run_dir}")
    proc = subprocess.Popen(
        command, cwd=ROOT, env=script_env(), stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    killed = False
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "journal.sqlite").exists() and finished(run_dir) >= 4:
            time.sleep(0.5)  # inside the next pass
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.05)
    proc.wait()
    assert killed, log.read_text()[-3000:]
    assert finished(run_dir) < 8, "killed mid-search"
    search(run_dir, "surrogate.population=4")
    assert journal(run_dir) == journal(population_run)


def finished(run_dir: Path) -> int:
    try:
        with sqlite3.connect(run_dir / "journal.sqlite", timeout=5) as db:
            return db.execute(
                "SELECT COUNT(*) FROM candidates WHERE status IN ('done', 'failed')"
            ).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_auto_picks_the_size_with_the_most_member_steps_per_second() -> None:
    from lossevo.training.population import measure_population

    def fixed_cost(k: int) -> float:  # a step costs 1 + 0.1 k: stacking pays off up to the largest K
        return 1 + 0.1 * k

    assert measure_population(fixed_cost) == 32

    def saturates(k: int) -> float:  # the device is full from K = 4: doubling past it gains nothing
        return max(1.0, k / 4)

    assert measure_population(saturates) == 4

    def runs_out_of_memory(k: int) -> float:
        if k >= 16:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return 1.0

    assert measure_population(runs_out_of_memory) == 8
    s = surrogate("model=convnet")
    assert s.population_size() == 1 and s._time_population(2, steps=3) > 0, "a real timing pass runs"


def test_built_in_surrogates_stack_side_by_side_and_other_models_by_vmap() -> None:
    from lossevo.models import ConvNet, ResNet9, ResNet9v2
    from lossevo.models.stacked import ChannelStack, VmapStack, stack_models

    x = torch.randn(4, 3, 32, 32)
    builders = [lambda: ConvNet(3, 10), lambda: ResNet9(3, 10, width=4), lambda: ResNet9v2(3, 10, width=4)]
    for make in builders:
        stack = stack_models([make(), make(), make()], x)
        assert isinstance(stack, ChannelStack) and stack(x).shape == (3, 4, 10)

    class LayerNormed(nn.Module):  # LayerNorm mixes channels: side by side it would mix members
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 4, 3), nn.LayerNorm([4, 30, 30]), nn.Flatten(), nn.Linear(3600, 10)
            )

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    assert isinstance(stack_models([LayerNormed(), LayerNormed()], x), VmapStack)
