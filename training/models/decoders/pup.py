"""SETR-PUP: progressive upsampling of the final patch tokens in four conv stages."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.models.decoders.blocks import conv_bn_relu_x2

# Stage i ends at 1/8, 1/4, 1/2 and 1/1 of the label size.
_STAGE_DIVISORS = (8, 4, 2, 1)


class PUPDecoder(nn.Module):
    """Four double-conv stages at embed_dim/4 channels, each followed by a bilinear upsampling, then 1x1."""

    def __init__(self, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        width = embed_dim // 4
        in_channels = [embed_dim] + [width] * (len(_STAGE_DIVISORS) - 1)
        self.stages = nn.ModuleList(conv_bn_relu_x2(channels, width) for channels in in_channels)
        self.classifier = nn.Conv2d(width, num_classes, kernel_size=1)

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        x = features[-1]
        for stage, divisor in zip(self.stages, _STAGE_DIVISORS, strict=True):
            target = (size[0] // divisor, size[1] // divisor)
            x = F.interpolate(stage(x), size=target, mode="bilinear", align_corners=False)
        return self.classifier(x)
