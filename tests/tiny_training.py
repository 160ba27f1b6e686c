"""A tiny segmenter trained in a second on tiles of a synthetic pattern: thin bright vertical stripes that
resizing a section to the tile size blurs away."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from tiny_models import ResizingSegmenter


def stripes(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Thin bright vertical stripes (2 traces wide) on a darker noisy background in [0, 255], and their
    mask."""
    label = np.zeros(shape, dtype=np.uint8)
    for column in rng.choice(shape[1] - 2, size=shape[1] // 8, replace=False):
        label[:, column:column + 2] = 1
    section = np.where(label == 1, 200.0, 60.0) + rng.normal(0.0, 10.0, shape)
    return section.astype(np.float32), label


def train_on_stripe_tiles(tile: tuple[int, int], steps: int = 60, seed: int = 0) -> ResizingSegmenter:
    """A `ResizingSegmenter` (it squeezes larger sections to `tile`, as the ViT models do) trained with Adam
    on batches of 8 random tiles of `tile`."""
    rng = np.random.default_rng(seed)
    inputs, labels = stripes(rng, (tile[0], 16 * tile[1]))
    torch.manual_seed(seed)
    model = ResizingSegmenter(num_classes=2, input_mean=127.5, input_std=60.0, training_shape=tile)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        columns = rng.integers(0, inputs.shape[1] - tile[1], size=8)
        x = torch.from_numpy(np.stack([inputs[:, c:c + tile[1]] for c in columns]))[:, None]
        y = torch.from_numpy(np.stack([labels[:, c:c + tile[1]] for c in columns])).long()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()
