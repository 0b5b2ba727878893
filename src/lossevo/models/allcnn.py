"""All-CNN-C (Springenberg et al. 2015), TaylorGLO's CIFAR model: only convolutions, strided
convolutions instead of pooling, dropout 0.2 on the input and 0.5 after each downsampling.
About 1.37M parameters on 10 classes."""

from __future__ import annotations

import torch
from torch import nn


def _conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, padding: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    ]


class AllCNNC(nn.Module):
    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        width: int = 96,
        input_dropout: float = 0.2,
        dropout: float = 0.5,
    ) -> None:
        super().__init__()
        w1, w2 = width, 2 * width
        self.features = nn.Sequential(
            nn.Dropout(input_dropout),
            *_conv(in_channels, w1),
            *_conv(w1, w1),
            *_conv(w1, w1, stride=2),
            nn.Dropout(dropout),
            *_conv(w1, w2),
            *_conv(w2, w2),
            *_conv(w2, w2, stride=2),
            nn.Dropout(dropout),
            *_conv(w2, w2, padding=0),
            *_conv(w2, w2, kernel=1, padding=0),
            nn.Conv2d(w2, num_classes, 1),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)
