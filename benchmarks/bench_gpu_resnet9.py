"""ResNet9 surrogate speed on CIFAR-10-shaped data on a GPU: seconds per epoch and images/s.

Writes a CIFAR-10 folder of random images in the real pickled format (50,000 training images),
then times ``Surrogate.train`` (the full stack a search uses: Lightning, the LightningModule,
batched augmentation on the GPU) for a few epochs of the Myrtle ResNet9 at batch 512
(``bench_surrogate.py --accelerator gpu`` compares the stack with a hand-written loop). For
scale: airbench94 (Keller Jordan) reaches 94% on an A100 in 2.59-3.09 s, about 10 epochs, i.e.
~0.3 s per epoch with a heavily tuned network.

    python benchmarks/bench_gpu_resnet9.py [--epochs 4] [--precision bf16-mixed] [--quick]
"""

from __future__ import annotations

import argparse
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lossevo.config import compose_config
from lossevo.losses import get_loss
from lossevo.training.surrogate import Job, Surrogate


def write_cifar10(folder: Path, train: int = 50000, test: int = 10000) -> None:
    base = folder / "cifar-10-batches-py"
    base.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per = train // 5
    for i in range(1, 6):
        batch = {
            b"data": rng.integers(0, 256, (per, 3072), dtype=np.uint8),
            b"labels": list(rng.integers(0, 10, per)),
        }
        (base / f"data_batch_{i}").write_bytes(pickle.dumps(batch))
    batch = {
        b"data": rng.integers(0, 256, (test, 3072), dtype=np.uint8),
        b"labels": list(rng.integers(0, 10, test)),
    }
    (base / "test_batch").write_bytes(pickle.dumps(batch))
    (base / "batches.meta").write_bytes(pickle.dumps({b"label_names": [str(i).encode() for i in range(10)]}))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--precision", default="bf16-mixed")
    parser.add_argument("--augment", default="base")
    parser.add_argument("--channels-last", action="store_true", help="trainer.channels_last=true")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="trainer.benchmark=true")
    parser.add_argument("--quick", action="store_true", help="tiny, on the CPU: checks the benchmark runs")
    args = parser.parse_args()
    gpu = torch.cuda.is_available() and not args.quick
    if not gpu and not args.quick:
        raise SystemExit("needs a CUDA GPU (--quick runs a tiny version on the CPU)")
    train, held_out = (50000, 5000) if not args.quick else (600, 100)
    if args.quick:
        args.epochs, args.batch, args.precision = 1, 32, "32-true"
    with tempfile.TemporaryDirectory() as tmp:
        write_cifar10(Path(tmp), train=train, test=10000 if gpu else 100)
        steps_per_epoch = (train - held_out) // args.batch
        overrides = [
            "dataset=cifar10",
            f"dataset.root={tmp}",
            f"dataset.val_size={held_out}",
            "model=resnet9",
            f"augment={args.augment}",
            f"surrogate.batch_size={args.batch}",
            f"surrogate.steps={steps_per_epoch * args.epochs}",
            f"surrogate.val_every={steps_per_epoch * args.epochs}",
            "surrogate.precheck.step=null",
            "surrogate.early_stop.step=null",
            f"trainer.accelerator={'gpu' if gpu else 'cpu'}",
            f"trainer.precision={args.precision}",
            "logger=none",
            f"trainer.channels_last={str(args.channels_last).lower()}",
            f"trainer.benchmark={'true' if args.cudnn_benchmark else 'null'}",
        ]
        surrogate = Surrogate(compose_config("evolve", overrides))
        device = torch.cuda.get_device_name() if gpu else "CPU (--quick)"
        print(
            f"{device}: {surrogate.data.summary()}; ResNet9 {surrogate.parameters:,} "
            f"parameters; batch {args.batch}; {args.precision}; augment={args.augment}; "
            f"channels_last={args.channels_last}; cudnn benchmark={args.cudnn_benchmark}"
        )
        surrogate.train(Job(get_loss("cross_entropy"), 0))  # warm-up: cuDNN autotuning, allocator
        if gpu:
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = surrogate.train(Job(get_loss("cross_entropy"), 1))
        if gpu:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        images = result.steps * args.batch
        print(
            f"full stack: {args.epochs} epochs ({result.steps} steps) in {seconds:.2f} s: "
            f"{seconds / args.epochs:.3f} s per epoch, {images / seconds:,.0f} images/s "
            f"(includes one validation pass over {held_out:,} images)"
        )


if __name__ == "__main__":
    main()
