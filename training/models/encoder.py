"""The encoder: a timm DINOv2/DINOv3 ViT that returns the normed patch tokens of four blocks as maps (blocks
3, 6, 9 and 12 of a 12-block ViT; the levels of every depth: `training.encoders.quarter_levels`)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from training.encoders import quarter_levels


class DinoV2Encoder(nn.Module):
    """Wraps a timm DINOv2 ViT built for one patch grid (`patch_grid.vit_for_grid`): its position embeddings
    were resampled once, so it takes exactly grid x patch-size inputs.

    `forward` gives four (B, embed_dim, gh, gw) maps: the outputs of the blocks `levels` (0-based; by
    default the quarters of the depth, blocks 3, 6, 9 and 12 of a 12-block ViT), each passed through the
    encoder's final norm, patch tokens only (no class or register token). The last map is the final normed
    patch tokens, what LINEAR and SETR-PUP decode.
    """

    def __init__(self, vit: nn.Module, levels: Sequence[int] | None = None) -> None:
        super().__init__()
        self.vit = vit
        self.levels: tuple[int, ...] = tuple(quarter_levels(len(vit.blocks)) if levels is None else levels)
        self.embed_dim: int = vit.embed_dim
        self.patch_size: int = vit.patch_embed.patch_size[0]
        self.patch_grid: tuple[int, int] = tuple(vit.patch_embed.grid_size)

    @property
    def input_shape(self) -> tuple[int, int]:
        return self.patch_grid[0] * self.patch_size, self.patch_grid[1] * self.patch_size

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if tuple(x.shape[-2:]) != self.input_shape:
            height, width = x.shape[-2:]
            raise ValueError(
                f"encoder input {height}x{width} does not fit the encoder's {self.patch_grid[0]}x"
                f"{self.patch_grid[1]} patch grid, built for {self.input_shape[0]}x{self.input_shape[1]} "
                "inputs (its position embeddings were resampled once for that grid); resize the input or "
                "build the model for the task's grid"
            )
        return self.vit.forward_intermediates(
            x, indices=list(self.levels), output_fmt="NCHW", intermediates_only=True, norm=True
        )
