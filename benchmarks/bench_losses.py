"""Compiled genome losses vs the same formulas written by hand, and integrity-check throughput.

1. NeuroLoss1 and A2 compiled from their graph genomes against hand-written torch, forward and
   backward on a [512, 100] batch (logits in, batch mean out, as in training). Target <= 1.2.
2. Integrity checks per second on fresh random graph genomes against a population of 100
   (structure, phenotype and gradient, probe batch, novelty). Target >= 5,000/s.

    python benchmarks/bench_losses.py [--repeats 7] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from lossevo.genome import GraphSpace
from lossevo.genome.integrity import IntegrityChecker, NoveltyArchive
from lossevo.losses import get_loss

EPS = 1e-7


def neuroloss1_by_hand(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    yhat = torch.softmax(logits, dim=1)
    y = F.one_hot(labels, logits.shape[1]).float()
    h = yhat / torch.sqrt(1 + (yhat / (y + EPS)) ** 2)
    return -(torch.log(h.abs() + EPS) + h).sum(dim=1).mean()


def a2_by_hand(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    yhat = torch.softmax(logits, dim=1)
    y = F.one_hot(labels, logits.shape[1]).float()
    return (y / (torch.special.i0e(torch.log(yhat + EPS)) + EPS)).sum(dim=1).mean()


def time_loss(fn, logits: torch.Tensor, labels: torch.Tensor, iterations: int) -> float:
    """Seconds per forward + backward."""
    for _ in range(10):
        fn(logits, labels).backward()
    start = time.perf_counter()
    for _ in range(iterations):
        logits.grad = None
        fn(logits, labels).backward()
    return (time.perf_counter() - start) / iterations


def bench_compiled(repeats: int) -> None:
    torch.manual_seed(0)
    logits = torch.randn(512, 100, requires_grad=True)
    labels = torch.randint(0, 100, (512,))
    for name, by_hand in (("neuroloss1", neuroloss1_by_hand), ("a2", a2_by_hand)):
        compiled = get_loss(name)
        assert torch.allclose(compiled(logits, labels), by_hand(logits, labels), rtol=1e-5)
        ratios, times = [], []
        for _ in range(repeats):  # interleaved, so drift hits both alike
            t_compiled = time_loss(compiled, logits, labels, 200)
            t_hand = time_loss(by_hand, logits, labels, 200)
            ratios.append(t_compiled / t_hand)
            times.append((t_compiled, t_hand))
        c, h = (statistics.median(t) for t in zip(*times, strict=True))
        print(
            f"{name}: compiled {c * 1e6:.0f} us, hand-written {h * 1e6:.0f} us per forward+backward "
            f"[512, 100]; ratio {statistics.median(ratios):.3f} (target <= 1.2)"
        )


def bench_integrity(genomes: int) -> None:
    check = IntegrityChecker()
    space = GraphSpace()
    rng = np.random.default_rng(0)
    population = NoveltyArchive()
    while len(population) < 100:
        result = check.check(space.random(rng), population)
        if result.ok:
            population.add(len(population), result.phenotype)
    candidates = [space.random(rng) for _ in range(genomes)]  # fresh: compiling is part of a check
    start = time.perf_counter()
    passed = sum(check.check(g, population).ok for g in candidates)
    rate = genomes / (time.perf_counter() - start)
    print(
        f"integrity: {rate:,.0f} checks/s on random graph genomes against a population of 100 "
        f"({passed} of {genomes} passed; target >= 5,000/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--genomes", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds: checks the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.genomes = 1, 200
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    bench_compiled(args.repeats)
    bench_integrity(args.genomes)


if __name__ == "__main__":
    main()
