"""Tiny segmenters for the tracking, prediction and serving tests.

They live in their own module (not in a test file) so a pickled copy logged to MLflow can be unpickled again.
Each carries what prediction reads from a model: `training_shape` (the tile size) and `input_range` (the
amplitudes it was trained on).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BYTE_RANGE = (0.0, 255.0)


class TinySegmenter(nn.Module):
    """Normalizes a raw (B, 1, H, W) section with its buffers and returns (B, C, H, W) logits at any H, W."""

    def __init__(self, num_classes: int = 2, input_mean: float = 0.0, input_std: float = 1.0,
                 training_shape: tuple[int, int] | None = None,
                 input_range: tuple[float, float] = BYTE_RANGE) -> None:
        super().__init__()
        self.register_buffer("input_mean", torch.tensor(input_mean))
        self.register_buffer("input_std", torch.tensor(input_std))
        self.training_shape = training_shape
        self.input_range = input_range
        self.body = nn.Sequential(
            nn.Conv2d(1, 4, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, num_classes, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.input_mean) / self.input_std)


class ResizingSegmenter(TinySegmenter):
    """Like the ViT segmenters, resizes any section to its training size (bilinear, antialiased) and its
    logits back: a plain forward on a larger section sees it squeezed."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = tuple(x.shape[-2:])
        if size != tuple(self.training_shape):
            x = F.interpolate(x, size=self.training_shape, mode="bilinear", align_corners=False,
                              antialias=True)
        logits = super().forward(x)
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def _two_classes(score: torch.Tensor) -> torch.Tensor:
    """Logits of class 0 and class 1 from a class-1 score (positive: class 1)."""
    return torch.cat([-score, score], dim=1)


class ThresholdSegmenter(nn.Module):
    """Class 1 where the amplitude exceeds `threshold`, a fixed rule, so a test knows the classes."""

    def __init__(self, threshold: float, training_shape: tuple[int, int] = (16, 16),
                 input_range: tuple[float, float] = BYTE_RANGE) -> None:
        super().__init__()
        self.register_buffer("threshold", torch.tensor(float(threshold)))
        self.training_shape = training_shape
        self.input_range = input_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _two_classes(x - self.threshold)


class LateralStepSegmenter(nn.Module):
    """Class 1 where the amplitudes of the traces left and right of a pixel differ by more than `step`: it
    sees across traces, so it tells which traces a section holds side by side."""

    def __init__(self, step: float, training_shape: tuple[int, int] = (16, 16),
                 input_range: tuple[float, float] = BYTE_RANGE) -> None:
        super().__init__()
        self.register_buffer("step", torch.tensor(float(step)))
        self.training_shape = training_shape
        self.input_range = input_range

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded = F.pad(x, (1, 1, 0, 0), mode="replicate")
        return _two_classes((padded[..., 2:] - padded[..., :-2]).abs() - self.step)


class TileMeanSegmenter(nn.Module):
    """One class-1 score per tile, from the tile's mean amplitude: tiles of a ramp disagree, so the seams of
    a tiled prediction show."""

    def __init__(self, training_shape: tuple[int, int], centre: float, scale: float) -> None:
        super().__init__()
        self.register_buffer("centre", torch.tensor(float(centre)))
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.training_shape = training_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        score = (x.mean(dim=(-2, -1), keepdim=True) - self.centre) / self.scale
        return _two_classes(score.expand_as(x))
