"""The small ConvNet surrogate of Morgan & Hougen (2024): three conv layers, about 14k parameters."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


class ConvNet(nn.Module):
    """conv-BN-ReLU-pool x2, conv-BN-ReLU, global average pool, linear.

    With the default widths (16, 32, 32): 14,458 parameters on 1-channel input and 10 classes,
    14,746 on 3 channels (the paper's "14,000").
    """

    def __init__(self, in_channels: int, num_classes: int, widths: Sequence[int] = (16, 32, 32)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for i, width in enumerate(widths):
            layers += [
                nn.Conv2d(channels, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


class GLOConvNet(nn.Module):
    """GLO's MNIST network (Gonzalez 2020, Sec. 3.2.1): 5x5 conv 32, pool, 5x5 conv 64, pool,
    1024-unit fully connected, dropout 0.4, linear."""

    def __init__(self, in_channels: int, num_classes: int, dropout: float = 0.4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.AdaptiveAvgPool2d(7),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(64 * 7 * 7, 1024),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(1024, num_classes),
        )

    def forward(self, x):
        return self.head(self.features(x))
