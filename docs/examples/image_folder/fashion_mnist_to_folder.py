"""Write Fashion-MNIST's IDX files as an ImageFolder tree of PNGs: <out>/train/<class>/, <out>/test/<class>/.

python docs/examples/image_folder/fashion_mnist_to_folder.py /tmp/fashion_folder
"""

import sys
import time
from pathlib import Path

from PIL import Image

from lossevo.data.idx import DEBIAN_FASHION_MNIST, FASHION_MNIST_CLASSES, read_idx

out = Path(sys.argv[1])
start = time.perf_counter()
for split, stem in (("train", "train"), ("test", "t10k")):
    images = read_idx(DEBIAN_FASHION_MNIST / f"{stem}-images-idx3-ubyte.gz")
    labels = read_idx(DEBIAN_FASHION_MNIST / f"{stem}-labels-idx1-ubyte.gz")
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = out / split / FASHION_MNIST_CLASSES[label].replace("/", "-")  # "T-shirt/top"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i:05d}.png")
print(f"wrote {sum(1 for _ in out.rglob('*.png'))} PNGs in {time.perf_counter() - start:.0f} s")
