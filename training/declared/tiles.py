"""Sections cut into tiles of the training size: a longer axis into tiles edge to edge (the last one
flush with the section's end), a shorter one padded (amplitudes by their edge values, labels with
`UNLABELLED`, so the padding is never trained on)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from training.tasks import UNLABELLED


def tile_starts(size: int, tile: int) -> list[int]:
    """Where tiles of `tile` pixels start along an axis of `size` pixels (one tile at 0 when shorter)."""
    if size <= tile:
        return [0]
    return [*range(0, size - tile, tile), size - tile]


def tiles(amplitudes: np.ndarray, labels: np.ndarray,
          shape: tuple[int, int]) -> Iterator[tuple[tuple[int, int], np.ndarray, np.ndarray]]:
    """((row, column), amplitudes, labels) of every tile of `shape` holding at least one labelled pixel."""
    pad = [(0, max(target - size, 0)) for size, target in zip(amplitudes.shape, shape, strict=True)]
    amplitudes = np.pad(amplitudes, pad, mode="edge")
    labels = np.pad(labels, pad, constant_values=UNLABELLED)
    for row in tile_starts(labels.shape[0], shape[0]):
        for column in tile_starts(labels.shape[1], shape[1]):
            window = np.s_[row:row + shape[0], column:column + shape[1]]
            if (labels[window] != UNLABELLED).any():
                yield (row, column), amplitudes[window], labels[window]
