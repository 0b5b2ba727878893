"""Datasets (in-memory uint8 tensors) and batch iterables."""

from lossevo.data.arrays import tensors
from lossevo.data.batches import AugmentedBatches, OrderedBatches, ShuffledBatches
from lossevo.data.datasets import (
    ImageSplits,
    cifar10,
    cifar100,
    digits,
    fashion_mnist,
    load_dataset,
    mnist,
    svhn,
)
from lossevo.data.files import caltech101, cars196, flowers102
from lossevo.data.folders import image_folder

__all__ = [
    "AugmentedBatches",
    "ImageSplits",
    "OrderedBatches",
    "ShuffledBatches",
    "caltech101",
    "cars196",
    "cifar10",
    "cifar100",
    "digits",
    "fashion_mnist",
    "flowers102",
    "image_folder",
    "load_dataset",
    "mnist",
    "svhn",
    "tensors",
]
