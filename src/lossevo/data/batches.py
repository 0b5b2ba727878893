"""Batch iterables over in-memory tensors: no per-sample Python, no DataLoader workers.

Images stay uint8 on the training device; a batch is one index into them.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from lossevo.data.augment import AugmentRNG, Pipeline


class ShuffledBatches:
    """Endless shuffled batches (a new seeded permutation every epoch, last partial batch dropped)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int) -> None:
        if batch_size > len(x):
            raise ValueError(f"batch size {batch_size} exceeds the {len(x)} training images")
        self.x, self.y, self.batch_size, self.seed = x, y, batch_size, seed

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        generator = torch.Generator().manual_seed(self.seed)
        per_epoch = len(self.x) // self.batch_size
        while True:
            order = torch.randperm(len(self.x), generator=generator).to(self.x.device)
            for i in range(per_epoch):
                index = order[i * self.batch_size : (i + 1) * self.batch_size]
                yield self.x[index], self.y[index]


class OrderedBatches:
    """One pass in order, for validation and test."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return -(-len(self.x) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, len(self.x), self.batch_size):
            yield self.x[start : start + self.batch_size], self.y[start : start + self.batch_size]


class AugmentedBatches:
    """Training batches as float images in [0, 1], augmented image by image.

    The per-image part of the pipeline (resize, RandAugment, crop, flip, cutout) runs on
    ``chunk`` batches at once, which amortises the fixed cost of each tensor op; batch-level
    mixing (mixup, cutmix) stays with the training step. Yields ``(x, y)``; the step a chunk
    starts at picks its progressive-RandAug phase.
    """

    def __init__(self, batches: ShuffledBatches, pipeline: Pipeline, seed: int, chunk: int = 8) -> None:
        self.batches, self.pipeline, self.seed, self.chunk = batches, pipeline, seed, max(1, chunk)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        rng = AugmentRNG(self.seed, self.batches.x.device)
        source = iter(self.batches)
        step = 0
        while True:
            group = [next(source) for _ in range(self.chunk)]
            x = torch.cat([b[0] for b in group]).float().div_(255)
            x = self.pipeline.per_image(x, rng, step)
            for i, (_, y) in enumerate(group):
                yield x[i * len(y) : (i + 1) * len(y)], y
            step += self.chunk
