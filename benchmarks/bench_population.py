"""Candidates per hour with K losses trained in one pass (surrogate.population=K) against today's
one-at-a-time path, in the same run.

For each surrogate (the ConvNet on Fashion-MNIST; ResNet9v2-small and ResNet9 on CIFAR-10-shaped
data, written as random images in CIFAR-10's real pickled format) it trains K different losses
(cross-entropy, focal, Baikal, NeuroLoss1 in turn) for ``--steps`` steps, once one at a time
(``Surrogate.train`` per loss, the path a search takes with K = 1) and once as one population
(``Surrogate.train_population``), and prints candidates per hour and the ratio. The first pass of
each shape is a warm-up (not timed). A fourth line, a 54-parameter ConvNet on 8 x 8 digits at
batch 8, has next to no compute: its ratios are the ceiling that the per-step fixed cost (Lightning,
Python, kernel launches) allows, what a small surrogate on a GPU approaches.

On a GPU (or with ``--paper``) it also times the augmentation paper's surrogate
(``experiment=augmentation_paper``: ResNet9v2 6.5M, batch 128, 20,000 steps, channels-last bf16)
over its first ``--paper-steps`` steps (one validation included, as every 500 steps in the paper),
alone and at ``--paper-k``, and prints seconds per candidate extrapolated to the 20,000 steps and
candidates per GPU-hour, next to Morgan & Hougen's ~20 per A100-hour.

    python benchmarks/bench_population.py [--sizes 1 4 8 16 32] [--steps 100] [--accelerator cpu]
                                          [--no-channels-last] [--only convnet] [--paper] [--quick]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from lossevo.config import compose_config
from lossevo.losses import get_loss
from lossevo.training.surrogate import Job, Surrogate

LOSSES = ("cross_entropy", "focal", "baikal", "neuroloss1")


def jobs(k: int) -> list[Job]:
    return [Job(get_loss(LOSSES[i % len(LOSSES)]), 1000 + i, f"member {i}", data_seed=0) for i in range(k)]


def timed(fn) -> float:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start


def surrogates(args: argparse.Namespace, cifar_root: Path) -> list[tuple[str, Surrogate]]:
    common = [
        f"surrogate.steps={args.steps}",
        f"surrogate.val_every={args.steps}",
        "logger=none",
        "surrogate.precheck.step=null",
        "surrogate.early_stop.step=null",
        f"trainer.accelerator={args.accelerator}",
        f"trainer.precision={args.precision}",
        f"trainer.channels_last={str(args.channels_last).lower()}",
    ]
    cifar = [
        "dataset=cifar10",
        f"dataset.root={cifar_root}",
        "dataset.download=false",
        *(["dataset.val_size=100"] if args.quick else []),
    ]
    chosen = {
        "convnet / fashion_mnist": ["dataset=fashion_mnist", "model=convnet"],
        "resnet9v2_small / cifar10-shaped": [*cifar, "model=resnet9v2_small"],
        "resnet9 / cifar10-shaped": [*cifar, "model=resnet9"],
        "tiny convnet / digits (fixed cost only)": [
            "dataset=digits",
            "model=convnet",
            "model.widths=[2,2,2]",
            "surrogate.batch_size=8",
        ],
    }
    return [
        (name, Surrogate(compose_config("train", [*common, *o])))
        for name, o in chosen.items()
        if args.only is None or args.only in name
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--accelerator", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", default="bf16-mixed" if torch.cuda.is_available() else "32-true")
    parser.add_argument("--only", default=None, help="only surrogates whose name contains this")
    parser.add_argument("--cifar-images", type=int, default=10000, help="training images written")
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="trainer.channels_last (the default config's: on)",
    )
    parser.add_argument(
        "--paper",
        action="store_true",
        default=torch.cuda.is_available(),
        help="also time the augmentation paper's surrogate (default on a GPU)",
    )
    parser.add_argument("--paper-steps", type=int, default=500, help="steps timed at the paper's surrogate")
    parser.add_argument("--paper-k", type=int, default=16, help="population size at the paper's surrogate")
    parser.add_argument(
        "--paper-override",
        action="append",
        default=[],
        help="a Hydra override there, e.g. augment=mixup (repeatable)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds: checks the benchmark runs")
    args = parser.parse_args()
    if args.quick:  # every surrogate and the paper's, a few steps each, K = 1 and 2
        args.sizes, args.steps, args.cifar_images, args.paper_steps, args.paper_k = [1, 2], 3, 600, 2, 2
        args.paper = True
    if args.accelerator == "cpu":
        torch.set_num_threads(torch.get_num_threads())
    from bench_gpu_resnet9 import write_cifar10  # the same CIFAR-10 folder writer

    with tempfile.TemporaryDirectory() as folder:
        write_cifar10(Path(folder), train=args.cifar_images, test=1000)
        layout = "channels-last" if args.channels_last else "contiguous"
        print(
            f"device: {args.accelerator}, precision {args.precision}, {layout}, {args.steps} steps per "
            f"candidate, {torch.get_num_threads()} threads"
        )
        for name, s in surrogates(args, Path(folder)):
            s.train_population(jobs(2))  # warm-up: kernels, allocator, first-pass costs
            one = timed(lambda s=s: [s.train(j) for j in jobs(4)]) / 4  # seconds per candidate alone
            print(f"\n{name}: one at a time {one:.2f} s per candidate, {3600 / one:,.0f} candidates/hour")
            for k in args.sizes:
                if k == 1:
                    continue
                try:
                    seconds = timed(lambda k=k, s=s: s.train_population(jobs(k))) / k
                except torch.cuda.OutOfMemoryError:
                    print(f"  K={k:>2}: out of memory")
                    break
                print(
                    f"  K={k:>2}: {seconds:.3f} s per candidate, {3600 / seconds:,.0f} candidates/hour, "
                    f"ratio to one at a time {one / seconds:.2f}"
                )
        if args.paper:
            paper(args, Path(folder))


def paper(args: argparse.Namespace, cifar_root: Path) -> None:
    """Seconds per candidate at the augmentation paper's surrogate, alone and at ``--paper-k``,
    from its first ``--paper-steps`` steps (set-up and one validation included) scaled to its
    20,000 steps."""
    base = compose_config("evolve", ["experiment=augmentation_paper"])
    full = int(base.surrogate.steps)
    cfg = compose_config(
        "evolve",
        [
            "experiment=augmentation_paper",
            f"dataset.root={cifar_root}",
            "dataset.download=false",
            "logger=none",
            f"surrogate.steps={args.paper_steps}",
            f"trainer.accelerator={args.accelerator}",
            *(["dataset.val_size=100"] if args.quick else []),
            *args.paper_override,
        ],
    )
    s = Surrogate(cfg)
    s.train(jobs(1)[0])  # warm-up: cuDNN's kernel choice for these shapes
    scale = full / args.paper_steps
    one = timed(lambda: s.train(jobs(1)[0])) * scale
    k = args.paper_k
    per = timed(lambda: s.train_population(jobs(k))) / k * scale
    where = "GPU" if args.accelerator != "cpu" else "CPU"
    changed = f" with {' '.join(args.paper_override)}" if args.paper_override else ""
    print(
        f"\naugmentation paper surrogate{changed} ({args.paper_steps} of {full} steps timed, "
        f"scaled to {full}): "
        f"alone {one:,.0f} s per candidate ({3600 / one:,.1f}/{where}-hour); K={k}: {per:,.0f} s "
        f"({3600 / per:,.1f}/{where}-hour), ratio {one / per:.2f}; "
        "Morgan & Hougen: ~20 per A100-hour"
    )


if __name__ == "__main__":
    main()
