"""Datasets (in-memory tensors) and batch iterables."""

from lossevo.data.batches import AugmentedBatches, OrderedBatches, ShuffledBatches
from lossevo.data.datasets import ImageSplits, digits, fashion_mnist

__all__ = ["AugmentedBatches", "ImageSplits", "OrderedBatches", "ShuffledBatches", "digits", "fashion_mnist"]
