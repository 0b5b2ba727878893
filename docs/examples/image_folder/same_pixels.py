"""Load the PNG tree with dataset=image_folder and Fashion-MNIST with its own loader; time the first
(decoding) and second (cached) loads and check both hold the same images.

LOSSEVO_DATA_DIR=/tmp/cache python docs/examples/image_folder/same_pixels.py /tmp/fashion_folder
"""

import sys
import time

import torch

from lossevo.data import fashion_mnist, image_folder


def load() -> tuple[object, float]:
    start = time.perf_counter()
    data = image_folder.__wrapped__(sys.argv[1], image_size=28, channels=1, val_size=5000)
    return data, time.perf_counter() - start


def fingerprints(x: torch.Tensor) -> torch.Tensor:
    """One number per image, sorted: equal multisets of images give equal tensors."""
    return torch.sort(x.flatten(1).double() @ torch.arange(x[0].numel(), dtype=torch.float64)).values


folder, first = load()
_, cached = load()
idx = fashion_mnist.__wrapped__()
print(folder.summary())
print(idx.summary())
print(f"first load (decoding every PNG): {first:.1f} s; second load (cache): {cached:.2f} s")
same_train = torch.equal(fingerprints(torch.cat([folder.train_x, folder.val_x])),
                         fingerprints(torch.cat([idx.train_x, idx.val_x])))  # fmt: skip
print("train + val images identical:", same_train)
print("test images identical:", torch.equal(fingerprints(folder.test_x), fingerprints(idx.test_x)))
