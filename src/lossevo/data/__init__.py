"""Datasets (in-memory uint8 tensors) and batch iterables. One module per file format (idx,
cifar_batches, svhn_mat, files for image-file transfer sets, folders for a user's image folder,
arrays for a user's arrays); splits.py is what they all return, sources.py where their files are."""

from lossevo.data.arrays import tensors
from lossevo.data.batches import AugmentedBatches, OrderedBatches, ShuffledBatches
from lossevo.data.cifar_batches import cifar10, cifar100
from lossevo.data.files import caltech101, cars196, flowers102
from lossevo.data.folders import image_folder
from lossevo.data.idx import fashion_mnist, mnist
from lossevo.data.sklearn_digits import digits
from lossevo.data.splits import ImageSplits, load_dataset
from lossevo.data.svhn_mat import svhn

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
