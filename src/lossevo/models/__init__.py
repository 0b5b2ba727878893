"""Image classifiers, built from ``conf/model/*.yaml`` with ``hydra.utils.instantiate``."""

from torch import nn

from lossevo.models.convnet import ConvNet


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


__all__ = ["ConvNet", "count_parameters"]
