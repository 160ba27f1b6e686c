"""Tiled prediction at the training resolution: a section of any size is cut into overlapping tiles of the
model's training size, each tile predicted as the model was trained, and the tiles' class probabilities
blended with a smooth window before the argmax, so the seams between tiles vanish."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext
from typing import Literal

import numpy as np
import torch
from torch import nn

from training.survey.contract import model_contract

Precision = Literal["auto", "float32", "bfloat16"]
WINDOW_FLOOR = 1e-3
"""The smallest blending weight: a pixel only one tile covers (the section's border) keeps that tile's
probabilities exactly, whatever its place in the tile."""


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size `tile` covering `length` (>= tile) with at least `overlap` shared
    pixels between neighbours; the last tile ends flush with the section."""
    if length < tile:
        raise ValueError(f"a length of {length} is shorter than one tile of {tile}: pad it first")
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, {tile}) for tiles of {tile}, got {overlap}")
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def blend_window(shape: tuple[int, int]) -> torch.Tensor:
    """A separable Hann window of `shape`, each axis sampled at pixel centres and floored at `WINDOW_FLOOR`:
    highest in the tile's middle, small but never zero at its edges."""
    rows, cols = (
        (torch.sin(torch.pi * (torch.arange(n, dtype=torch.float64) + 0.5) / n) ** 2).clamp_min(WINDOW_FLOOR)
        for n in shape
    )
    return torch.outer(rows, cols).float()


class TiledPredictor:
    """Applies `model` (raw (B, 1, H, W) sections in, (B, C, H, W) logits out) to sections of any size in
    tiles of `tile_shape` (default: the model's `training_shape`). The model is moved to `device`
    (default: CUDA when available) and put in eval mode; `precision` "auto" uses bfloat16 autocast on CUDA."""

    def __init__(
        self,
        model: nn.Module,
        *,
        tile_shape: tuple[int, int] | None = None,
        overlap: tuple[int, int] | None = None,
        batch_size: int = 8,
        device: str | torch.device | None = None,
        precision: Precision = "auto",
    ) -> None:
        self.tile_shape = model_contract(model, tile_shape=tile_shape).training_shape
        self.overlap = overlap if overlap is not None else (self.tile_shape[0] // 4, self.tile_shape[1] // 4)
        for size, shared in zip(self.tile_shape, self.overlap, strict=True):
            if not 0 <= shared < size:
                raise ValueError(f"overlap {self.overlap} must be smaller than the tile {self.tile_shape}")
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {batch_size}")
        if precision not in ("auto", "float32", "bfloat16"):
            raise ValueError(f"unknown precision {precision!r}; known: auto, float32, bfloat16")
        self.batch_size = batch_size
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.autocast = precision == "bfloat16" or (precision == "auto" and self.device.type == "cuda")
        self.model = model.to(self.device).eval()
        self.window = blend_window(self.tile_shape).to(self.device)

    def _tile_batches(self, height: int, width: int, tile: tuple[int, int],
                      overlap: tuple[int, int]) -> Iterator[list[tuple[int, int]]]:
        corners = [(row, col) for row in tile_starts(height, tile[0], overlap[0])
                   for col in tile_starts(width, tile[1], overlap[1])]
        for first in range(0, len(corners), self.batch_size):
            yield corners[first:first + self.batch_size]

    def _forward(self, tiles: torch.Tensor) -> torch.Tensor:
        autocast = (torch.autocast(self.device.type, dtype=torch.bfloat16) if self.autocast
                    else nullcontext())
        with autocast:
            logits = self.model(tiles)
        if logits.ndim != 4 or logits.shape[0] != tiles.shape[0] or logits.shape[-2:] != tiles.shape[-2:]:
            raise ValueError(f"{type(self.model).__name__} returned logits of shape {tuple(logits.shape)} "
                             f"for tiles of shape {tuple(tiles.shape)}; expected (B, classes, H, W)")
        return logits.float().softmax(dim=1)

    def tile_for(self, height: int, width: int) -> tuple[int, int]:
        """The tile of a (height, width) section: the training size, cut to the section's where larger."""
        return min(self.tile_shape[0], height), min(self.tile_shape[1], width)

    def probabilities(self, section: np.ndarray) -> torch.Tensor:
        """Blended class probabilities (C, H, W), float32 on the predictor's device, of a raw (H, W)
        section; where the section is smaller than a tile, the tile follows the section's size (a 3-trace
        line is predicted in tiles 3 traces wide), never padded or resized."""
        section = np.asarray(section, dtype=np.float32)
        if section.ndim != 2:
            raise ValueError(f"expected a 2-D (H, W) section, got an array of shape {section.shape}")
        height, width = section.shape
        tile = self.tile_for(height, width)
        overlap = (min(self.overlap[0], tile[0] - 1), min(self.overlap[1], tile[1] - 1))
        window = self.window if tile == self.tile_shape else blend_window(tile).to(self.device)
        image = torch.from_numpy(section).to(self.device)
        total: torch.Tensor | None = None
        weight = torch.zeros(image.shape, device=self.device)
        with torch.inference_mode():
            for corners in self._tile_batches(height, width, tile, overlap):
                tiles = torch.stack([image[r:r + tile[0], c:c + tile[1]] for r, c in corners])
                probabilities = self._forward(tiles[:, None]) * window
                if total is None:
                    total = torch.zeros((probabilities.shape[1], *image.shape), device=self.device)
                for (row, col), part in zip(corners, probabilities, strict=True):
                    total[:, row:row + tile[0], col:col + tile[1]] += part
                    weight[row:row + tile[0], col:col + tile[1]] += window
            return total / weight

    def classes(self, section: np.ndarray) -> np.ndarray:
        """The class of every pixel of a raw (H, W) section, uint8 (H, W)."""
        return self.probabilities(section).argmax(dim=0).to(torch.uint8).cpu().numpy()


def predict_section(
    model: nn.Module,
    section: np.ndarray,
    *,
    tile_shape: tuple[int, int] | None = None,
    overlap: tuple[int, int] | None = None,
    batch_size: int = 8,
    device: str | torch.device | None = None,
) -> np.ndarray:
    """The class of every pixel of a raw (H, W) section as uint8 (H, W), predicted in tiles of the model's
    training size (see `TiledPredictor`). The section's amplitudes are used as they are."""
    predictor = TiledPredictor(model, tile_shape=tile_shape, overlap=overlap, batch_size=batch_size,
                               device=device)
    return predictor.classes(section)
