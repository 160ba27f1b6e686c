"""LINEAR: a 1x1 convolution on the final patch tokens, upsampled to the label size."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LinearDecoder(nn.Module):
    """Classifies each patch token with a 1x1 convolution; nearest upsampling, as the authors' code."""

    def __init__(self, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        self.classifier = nn.Conv2d(embed_dim, num_classes, kernel_size=1)

    def forward(self, features: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        return F.interpolate(self.classifier(features[-1]), size=size, mode="nearest")
