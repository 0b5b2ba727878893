"""Models from timm by name (EfficientNetV2-S, SE-ResNeXt, ResNet-50, Inception-v3, ...).

Pretrained ImageNet weights cannot be downloaded here, so fine-tuning starts from a local
checkpoint file (``model.checkpoint=``), loaded by :func:`lossevo.models.load_checkpoint`.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from lossevo.errors import LossevoError


def timm_model(
    in_channels: int,
    num_classes: int,
    name: str,
    dropout: float = 0.0,
    drop_path: float = 0.0,
    input_size: int | None = None,
) -> nn.Module:
    """``timm.create_model(name)`` with our classes and channels. ``input_size`` documents the
    resolution the model needs (Inception-v3: 299); the augment configs resize to it."""
    import timm

    options: dict[str, Any] = {"drop_path_rate": drop_path} if drop_path else {}  # not every model takes it
    try:
        return timm.create_model(
            name,
            pretrained=False,
            num_classes=num_classes,
            in_chans=in_channels,
            drop_rate=dropout,
            **options,
        )
    except RuntimeError as err:  # timm: "Unknown model (...)"
        close = timm.list_models(f"*{name}*")[:8]
        hint = f" Similar: {', '.join(close)}" if close else ""
        raise LossevoError(f"timm has no model {name!r} ({err}).{hint}") from None
