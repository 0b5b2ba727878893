"""Batch iterables over in-memory tensors: no per-sample Python, no DataLoader workers.

Images stay uint8 on the training device; a batch is one index into them.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch


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
