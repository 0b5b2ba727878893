"""One surrogate evaluation through the full stack vs a hand-written PyTorch loop.

Both train the same ConvNet on the same in-memory data with the same batch size, steps,
augmentation, loss (NeuroLoss1 as a graph genome, as a search candidate), optimiser, schedule and
validation points. The full stack is the driver's per-candidate path: the candidate's config
(Hydra-composed template + candidate values), the loss built from it, the Lightning Trainer and
the LightningModule's hooks. The ratio is their overhead; both reach the same accuracy.
Runs are interleaved and repeated; the ratio of medians is printed. Target: <= 1.10 on CPU.

    python benchmarks/bench_surrogate.py [--dataset fashion_mnist] [--steps 300] [--repeats 5] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lossevo.config import CONF_DIR, build
from lossevo.config.composer import ConfigComposer
from lossevo.data import AugmentedBatches, OrderedBatches, ShuffledBatches
from lossevo.data.augment import AugmentRNG
from lossevo.losses import genome_loss_config
from lossevo.losses.published import GENOMES
from lossevo.training.surrogate import Job, Surrogate


def hand_written(s: Surrogate, loss_cfg, seed: int) -> float:
    """The same training as Surrogate.train, written as a plain loop; returns best val acc."""
    torch.manual_seed(seed)
    settings = s.settings
    model = s.build_model().to(s.device)
    loss_fn = build(loss_cfg, "loss")
    optimizer = s.optimizer(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, s.schedule(settings.steps))
    mean = torch.tensor(s.data.mean, device=s.device).view(1, -1, 1, 1)
    std = torch.tensor(s.data.std, device=s.device).view(1, -1, 1, 1)
    mixing = AugmentRNG(seed + 7, s.device)
    train_x, train_y = s.data.train_x.to(s.device), s.data.train_y.to(s.device)
    val = OrderedBatches(s.data.val_x.to(s.device), s.data.val_y.to(s.device), settings.val_batch_size)
    shuffled = ShuffledBatches(train_x, train_y, settings.batch_size, seed)
    batches = iter(AugmentedBatches(shuffled, s.augment, seed, settings.augment_chunk))
    best = 0.0
    model.train()
    for step in range(1, settings.steps + 1):
        x, y = next(batches)
        x, y = s.augment.mix(x, y, mixing)
        loss = loss_fn(model((x - mean) / std), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if step % settings.val_every == 0 or step == settings.steps:
            model.eval()
            correct = 0
            with torch.no_grad():
                for vx, vy in val:
                    correct += int((model((vx.float() / 255 - mean) / std).argmax(1) == vy).sum())
            best = max(best, correct / len(val.x))
            model.train()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, seconds: checks the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.dataset, args.steps, args.repeats = "digits", 20, 1
    overrides = [
        f"dataset={args.dataset}",
        f"surrogate.steps={args.steps}",
        f"trainer.accelerator={args.accelerator}",
        "logger=none",
    ]
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        composer = ConfigComposer(compose("evolve", overrides=overrides), "evolve", overrides)
        loss_node = genome_loss_config("neuroloss1", GENOMES["neuroloss1"])
        cfg = OmegaConf.create(composer.training(loss_node, 0))
        surrogate = Surrogate(cfg)
        print(
            f"{surrogate.data.summary()}; {args.steps} steps, batch {surrogate.settings.batch_size}, "
            f"device {surrogate.device}, threads {torch.get_num_threads()}"
        )

        def full_stack(seed: int) -> tuple[float, float]:
            start = time.perf_counter()
            candidate = OmegaConf.create(composer.training(loss_node, seed))
            loss = build(candidate.loss, "loss")
            result = surrogate.train(Job(loss, int(candidate.seed)))
            return time.perf_counter() - start, result.fitness or 0.0

        def plain(seed: int) -> tuple[float, float]:
            start = time.perf_counter()
            acc = hand_written(surrogate, cfg.loss, seed)
            return time.perf_counter() - start, acc

        full_stack(0), plain(0)  # warm-up: allocator, oneDNN kernels, Lightning imports
        stack_times, plain_times = [], []
        for rep in range(args.repeats):
            t_stack, acc_stack = full_stack(rep)
            t_plain, acc_plain = plain(rep)
            stack_times.append(t_stack)
            plain_times.append(t_plain)
            print(
                f"  repeat {rep}: full stack {t_stack:.2f}s (val {acc_stack:.4f}), "
                f"hand-written {t_plain:.2f}s (val {acc_plain:.4f}), ratio {t_stack / t_plain:.3f}"
            )
        ratio = statistics.median(stack_times) / statistics.median(plain_times)
        per_pair = statistics.median(a / b for a, b in zip(stack_times, plain_times, strict=True))
        print(
            f"full stack / hand-written: {ratio:.3f} (ratio of medians), "
            f"{per_pair:.3f} (median of pairs); target <= 1.10"
        )


if __name__ == "__main__":
    os.environ.setdefault("WANDB_MODE", "disabled")
    main()
