"""The paper's UNet baseline (32-64-128-256-256 channels, bilinear upsampling) on the 1-channel section."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.errors import UnknownKeyError
from training.lookup import unknown_key_message

# Four 2x poolings: ours pads sections to a multiple of this (the authors' pooling floors odd sizes).
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


def upsample_to(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """`x` resized to the skip's size, bilinear with aligned corners (every stage of ours, and the authors'
    last three)."""
    return F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=True)


def zero_pad_to(x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """`x` zero-padded, centred, to the skip's size: the authors' first stage, whose upsampled bottleneck
    is computed and discarded."""
    rows, cols = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
    return F.pad(x, (cols // 2, cols - cols // 2, rows // 2, rows - rows // 2))


# How the bottleneck reaches the first decoder stage's size.
BOTTLENECK_JOINS = {"upsample": upsample_to, "zero_pad": zero_pad_to}


class Up(nn.Module):
    """Concatenation of the skip with the (resized) deeper map, double conv."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = double_conv(in_channels, out_channels, in_channels // 2)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """Logits (B, C, H, W) for a scaled (B, in_channels, H, W) input, H and W at least 16.

    `bottleneck="upsample"` (ours) upsamples the bottleneck to the first decoder stage, as a UNet should;
    `"zero_pad"` is the authors' forward, which discards its upsampled copy and zero-pads the bottleneck
    instead. The later stages upsample in both.
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

    def forward(self, x: torch.Tensor, bottleneck: str = "upsample") -> torch.Tensor:
        if bottleneck not in BOTTLENECK_JOINS:
            raise UnknownKeyError(unknown_key_message("bottleneck join", bottleneck, BOTTLENECK_JOINS))
        skips = [self.inlet(x)]
        for down in self.downs:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for stage, up in enumerate(self.ups):
            skip = skips.pop()
            join = BOTTLENECK_JOINS[bottleneck] if stage == 0 else upsample_to
            x = up(join(x, skip), skip)
        return self.classifier(x)
