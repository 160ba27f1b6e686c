"""The paper's UNet baseline (32-64-128-256-256 channels, bilinear upsampling) on the 1-channel section."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Four 2x poolings: the input's height and width must be multiples of this.
UNET_STRIDE = 16


def double_conv(in_channels: int, out_channels: int, mid_channels: int | None = None) -> nn.Sequential:
    """(3x3 conv without bias, batch norm, ReLU) twice."""
    mid_channels = mid_channels or out_channels
    return nn.Sequential(
        nn.Conv2d(in_channels, mid_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(mid_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class Up(nn.Module):
    """Bilinear upsampling to the skip's size, concatenation with the skip, double conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = double_conv(in_channels, out_channels, in_channels // 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """Logits (B, C, H, W) for a normalized (B, in_channels, H, W) input, H and W multiples of 16.

    The authors' forward passes the bottleneck to the first decoder stage without upsampling it (the
    upsampled copy is discarded and the map zero-padded instead); here it is upsampled, as a UNet should.
    """

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.inlet = double_conv(in_channels, 32)
        self.downs = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), double_conv(cin, cout))
            for cin, cout in ((32, 64), (64, 128), (128, 256), (256, 256))
        )
        self.ups = nn.ModuleList(Up(cin, cout) for cin, cout in ((512, 128), (256, 64), (128, 32), (64, 32)))
        self.classifier = nn.Conv2d(32, num_classes, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = [self.inlet(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.ups:
            x = up(x, skips.pop())
        return self.classifier(x)
