"""DPT as the authors built it: reassemble blocks 3/6/9/12, fuse with residual units, upsample to labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FEATURES = 256
# The fusion of block 12 ends at 1/16 of the label size, then 9 -> 1/8, 6 -> 1/4, 3 -> 1/2.
_FUSION_DIVISORS = (16, 8, 4, 2)


class ResidualConvUnit(nn.Module):
    """ReLU, 3x3 conv, batch norm, twice, plus the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class FusionBlock(nn.Module):
    """Adds a refined skip map to the running path, refines, upsamples to `size`, then a 1x1 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.skip_unit = ResidualConvUnit(channels)
        self.path_unit = ResidualConvUnit(channels)
        self.out_conv = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, path: torch.Tensor, skip: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor:
        if skip is not None:
            skip = self.skip_unit(skip)
            path = path + F.interpolate(skip, size=path.shape[-2:], mode="bilinear", align_corners=True)
        path = F.interpolate(self.path_unit(path), size=size, mode="bilinear", align_corners=True)
        return self.out_conv(path)


class DPTDecoder(nn.Module):
    """3x3 projections to 256 channels, four fusion blocks (the first, on block 12, has no skip: its
    `skip_unit` is built but unused, as the authors'), 3x3 conv to 128, nearest upsampling to the label
    size, 3x3 conv to 32, ReLU, 1x1 conv to the classes, ReLU: as in the authors' head, the logits are
    never negative."""

    def __init__(self, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.projections = nn.ModuleList(
            nn.Conv2d(embed_dim, FEATURES, kernel_size=3, padding=1, bias=False) for _ in range(4)
        )
        self.fusions = nn.ModuleList(FusionBlock(FEATURES) for _ in range(4))
        self.neck = nn.Conv2d(FEATURES, FEATURES // 2, kernel_size=3, padding=1)
        self.head = nn.Sequential(
            nn.Conv2d(FEATURES // 2, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, num_classes, kernel_size=1),
            nn.ReLU(),
        )

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        projected = [project(feature) for project, feature in zip(self.projections, features, strict=True)]
        path: torch.Tensor | None = None
        for fusion, skip, divisor in zip(self.fusions, reversed(projected), _FUSION_DIVISORS, strict=True):
            target = (size[0] // divisor, size[1] // divisor)
            path = fusion(skip, None, target) if path is None else fusion(path, skip, target)
        out = F.interpolate(self.neck(path), size=size, mode="nearest")
        return self.head(out)
