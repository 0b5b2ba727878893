"""ResNet9 (Myrtle / DavidNet) and its pre-activation variant ResNet9v2.

ResNet9 (Page 2018, the DAWNBench "DavidNet"): prep conv 64; layer1 conv 128 + pool + a residual
block of two convs; layer2 conv 256 + pool; layer3 conv 512 + pool + a residual block; global max
pool; linear; logits scaled by 0.125. About 6.57M parameters at width 64 (docs/methods.md §9).

ResNet9v2 has the same layout with pre-activation (BN-ReLU-conv) ordering. The papers use two
sizes: MH-AUG's 6.5M "custom ResNet9v2" (width 64) and MH-NLE's ~30k one (width 4, 26k
parameters on CIFAR; the closest integer width).
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


def _bn_conv(c_in: int, c_out: int, pool: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.BatchNorm2d(c_in),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
    ]
    if pool:
        layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResNet9(nn.Module):
    """Myrtle / DavidNet ResNet9 (post-activation)."""

    def __init__(
        self, in_channels: int, num_classes: int, width: int = 64, scale: float = 0.125, dropout: float = 0.0
    ) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_bn(in_channels, w),
            _conv_bn(w, 2 * w, pool=True),
            Residual(nn.Sequential(_conv_bn(2 * w, 2 * w), _conv_bn(2 * w, 2 * w))),
            _conv_bn(2 * w, 4 * w, pool=True),
            _conv_bn(4 * w, 8 * w, pool=True),
            Residual(nn.Sequential(_conv_bn(8 * w, 8 * w), _conv_bn(8 * w, 8 * w))),
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(8 * w, num_classes, bias=False)
        self.scale = scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x))) * self.scale


class ResNet9v2(nn.Module):
    """The pre-activation ResNet9 of the Morgan & Hougen papers."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 64, dropout: float = 0.0) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1, bias=False),
            _bn_conv(w, 2 * w, pool=True),
            Residual(nn.Sequential(_bn_conv(2 * w, 2 * w), _bn_conv(2 * w, 2 * w))),
            _bn_conv(2 * w, 4 * w, pool=True),
            _bn_conv(4 * w, 8 * w, pool=True),
            Residual(nn.Sequential(_bn_conv(8 * w, 8 * w), _bn_conv(8 * w, 8 * w))),
            nn.BatchNorm2d(8 * w),
            nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(8 * w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))
