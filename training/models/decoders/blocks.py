"""The convolution block the SETR decoders share: two 3x3 conv + batch norm + ReLU."""

from __future__ import annotations

from torch import nn


def conv_bn_relu_x2(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions (with bias, as the authors' SETR heads), each followed by batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )
