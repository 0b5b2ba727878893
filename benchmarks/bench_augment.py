"""Data + augmentation cost per training step, as a share of a ConvNet training step (CPU).

For each technique: the time to draw a batch from the in-memory dataset, convert it and run the
augmentation pipeline as training does (per-image ops on `surrogate.augment_chunk` batches at
once, mixing per batch), divided by the time of one ConvNet step (forward, loss, backward, Adam)
on that batch. Interleaved and repeated; medians. Target: <= 10% for every technique.

    python benchmarks/bench_augment.py [--dataset fashion_mnist] [--batch 64] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from omegaconf import OmegaConf

from lossevo.config import build, compose_config
from lossevo.data import AugmentedBatches, ShuffledBatches, load_dataset
from lossevo.data.augment import AugmentRNG
from lossevo.losses import get_loss
from lossevo.training.surrogate import MODEL_KEYS

TECHNIQUES = ["base", "cutout", "mixup", "cutmix", "randaug", "all"]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=None, help="default: surrogate.augment_chunk")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds: checks the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.dataset, args.steps, args.repeats = "digits", 2, 1
    base = compose_config("evolve", [f"dataset={args.dataset}", "logger=none"])
    data = load_dataset(base.dataset)
    node = OmegaConf.masked_copy(base.model, [k for k in base.model if k not in MODEL_KEYS])
    model = build(node, "model", in_channels=data.shape[0], num_classes=data.num_classes)
    optimizer = torch.optim.Adam(model.parameters(), 1e-3)
    loss_fn = get_loss("cross_entropy")
    chunk = args.chunk or int(base.surrogate.augment_chunk)
    streams = {}
    for name in TECHNIQUES:
        cfg = compose_config("evolve", [f"dataset={args.dataset}", f"augment={name}"])
        pipeline = build(cfg.augment, "augment", num_classes=data.num_classes)
        shuffled = ShuffledBatches(data.train_x, data.train_y, args.batch, seed=0)
        streams[name] = (pipeline, iter(AugmentedBatches(shuffled, pipeline, seed=0, chunk=chunk)))
    rng = AugmentRNG(0)
    print(f"{data.summary()}; batch {args.batch}; augment_chunk {chunk}; {torch.get_num_threads()} threads")

    def data_and_augment(name: str) -> tuple[float, torch.Tensor, torch.Tensor]:
        start = time.perf_counter()
        pipeline, stream = streams[name]
        for _ in range(args.steps):
            x, y = next(stream)
            x, y = pipeline.mix(x, y, rng)
        return (time.perf_counter() - start) / args.steps, x, y

    def train_step(x: torch.Tensor, y: torch.Tensor) -> float:
        start = time.perf_counter()
        for _ in range(args.steps):
            loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return (time.perf_counter() - start) / args.steps

    for name in TECHNIQUES:  # warm-up
        train_step(*data_and_augment(name)[1:])
    shares: dict[str, list[float]] = {name: [] for name in TECHNIQUES}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in TECHNIQUES}
    for _ in range(args.repeats):
        for name in TECHNIQUES:
            t_aug, x, y = data_and_augment(name)
            t_step = train_step(x, y)
            shares[name].append(t_aug / t_step)
            times[name].append((t_aug, t_step))
    for name in TECHNIQUES:
        aug, step = (statistics.median(t) for t in zip(*times[name], strict=True))
        print(
            f"{name:8s} data+augmentation {aug * 1e3:6.2f} ms, ConvNet step {step * 1e3:6.2f} ms: "
            f"{statistics.median(shares[name]):6.1%} (target <= 10%)"
        )


if __name__ == "__main__":
    main()
