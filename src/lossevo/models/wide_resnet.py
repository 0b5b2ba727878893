"""Wide residual networks for CIFAR-sized images (Zagoruyko & Komodakis 2016).

WRN-d-k: (d - 4) / 6 pre-activation basic blocks per stage, widths 16k, 32k, 64k, dropout between
the two convs of a block. WRN-28-10 has about 36.5M parameters on 10 classes (docs/methods.md §9);
timm has no CIFAR-style WRN, so it is written here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lossevo.errors import LossevoError


class _Block(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.shortcut = (
            None if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.dropout(F.relu(self.bn2(out))))
        return out + shortcut


class WideResNet(nn.Module):
    def __init__(
        self, in_channels: int, num_classes: int, depth: int = 28, width: int = 10, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if (depth - 4) % 6:
            raise LossevoError(f"model.depth must be 6n + 4 (16, 22, 28, 40...), got {depth}")
        blocks = (depth - 4) // 6
        widths = [16, 16 * width, 32 * width, 64 * width]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False)]
        c_in = widths[0]
        for stage, c_out in enumerate(widths[1:]):
            for i in range(blocks):
                layers.append(_Block(c_in, c_out, stride=2 if stage > 0 and i == 0 else 1, dropout=dropout))
                c_in = c_out
        layers += [nn.BatchNorm2d(c_in), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
