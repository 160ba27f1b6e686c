"""SETR-MLA: top-down aggregation of blocks 12, 9, 6, 3, a x4 head per level, concat, 1x1, upsample."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.models.decoders.blocks import conv_bn_relu_x2


class _Level(nn.Module):
    """One level: `inlet` halves the channels, `refine` mixes the running sum, `head` quarters and x4."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        half, quarter = embed_dim // 2, embed_dim // 4
        self.inlet = conv_bn_relu_x2(embed_dim, half)
        self.refine = conv_bn_relu_x2(half, half)
        self.head = nn.Sequential(
            conv_bn_relu_x2(half, half),
            conv_bn_relu_x2(half, quarter),
            nn.Upsample(scale_factor=4, mode="bilinear", align_corners=False),
            conv_bn_relu_x2(quarter, quarter),
        )


class MLADecoder(nn.Module):
    """Reads blocks 3, 6, 9, 12; the deepest level starts the running sum, each shallower one adds to it.

    As in the authors' SETR-MLA, the deepest level's head reads its inlet directly: its `refine` block
    is built (and counted, 10,969,350 parameters for ViT-S and 6 classes) but not applied.
    """

    def __init__(self, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.levels = nn.ModuleList(_Level(embed_dim) for _ in range(4))
        self.classifier = nn.Conv2d(embed_dim, num_classes, kernel_size=1)

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        deepest, *shallower = zip(self.levels, reversed(features), strict=True)
        level, feature = deepest
        running = level.inlet(feature)
        outputs = [level.head(running)]
        for level, feature in shallower:
            running = running + level.inlet(feature)
            outputs.append(level.head(level.refine(running)))
        logits = self.classifier(torch.cat(outputs, dim=1))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
