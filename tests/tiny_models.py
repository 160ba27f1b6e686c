"""A tiny fully-convolutional segmenter for the tracking tests.

It lives in its own module (not in a test file) so a pickled copy logged to MLflow can be unpickled again.
"""

from __future__ import annotations

import torch
from torch import nn


class TinySegmenter(nn.Module):
    """Normalizes a raw (B, 1, H, W) section with its buffers and returns (B, C, H, W) logits at any H, W."""

    def __init__(self, num_classes: int = 2, input_mean: float = 0.0, input_std: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.tensor(input_mean))
        self.register_buffer("input_std", torch.tensor(input_std))
        self.body = nn.Sequential(
            nn.Conv2d(1, 4, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, num_classes, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.input_mean) / self.input_std)
