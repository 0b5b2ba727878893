"""Image classifiers, built from ``conf/model/*.yaml`` with ``hydra.utils.instantiate``.

Every model takes ``in_channels`` and ``num_classes`` (the surrogate passes the dataset's). Two
keys of a model config are lossevo's, not the constructor's: ``checkpoint`` (a local file of
weights to start from, for fine-tuning) and ``input_size`` (the resolution the model needs; the
augment configs resize to it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from lossevo.errors import LossevoError
from lossevo.models.allcnn import AllCNNC
from lossevo.models.convnet import ConvNet, GLOConvNet
from lossevo.models.resnet import ResNet9, ResNet9v2
from lossevo.models.timm_models import timm_model
from lossevo.models.wide_resnet import WideResNet

log = logging.getLogger(__name__)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def load_checkpoint(model: nn.Module, path: str | Path) -> nn.Module:
    """Load weights from a local file into ``model``, for fine-tuning.

    Accepts a plain state dict or one wrapped under ``state_dict`` / ``model`` (Lightning and
    most training scripts); a ``model.`` prefix is stripped. Tensors whose shape differs (the
    classifier head of another number of classes) are skipped and stay freshly initialised.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise LossevoError(f"model.checkpoint {str(path)!r} does not exist")
    try:
        data: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise LossevoError(f"model.checkpoint {str(path)!r} is not a torch checkpoint ({err})") from None
    for key in ("state_dict", "model"):
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict):
        raise LossevoError(f"model.checkpoint {str(path)!r} holds no state dict")
    own = model.state_dict()
    state = {k.removeprefix("model."): v for k, v in data.items()}
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise LossevoError(f"model.checkpoint {str(path)!r} has no weights that fit this model")
    skipped = sorted(set(state) - set(usable))
    model.load_state_dict(usable, strict=False)
    log.info(
        "loaded %d tensors from %s (%d skipped: %s)", len(usable), path, len(skipped), ", ".join(skipped[:5])
    )
    return model


__all__ = [
    "AllCNNC",
    "ConvNet",
    "GLOConvNet",
    "ResNet9",
    "ResNet9v2",
    "WideResNet",
    "count_parameters",
    "load_checkpoint",
    "timm_model",
]
