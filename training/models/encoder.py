"""The DINOv2 encoder: a timm ViT that returns the normed patch tokens of blocks 3, 6, 9 and 12 as maps."""

from __future__ import annotations

import torch
from torch import nn

# Blocks 3, 6, 9 and 12 (1-based), the levels SETR-MLA and DPT read; the last is the final output.
FEATURE_BLOCKS = (2, 5, 8, 11)


class DinoV2Encoder(nn.Module):
    """Wraps a timm DINOv2 ViT (`dynamic_img_size=True`, any H, W multiple of the patch size).

    `forward` gives four (B, embed_dim, H/14, W/14) maps: the outputs of blocks 3, 6, 9 and 12, each
    passed through the encoder's final norm, patch tokens only. The last map is the final normed patch
    tokens, what LINEAR and SETR-PUP decode.
    """

    def __init__(self, vit: nn.Module) -> None:
        super().__init__()
        self.vit = vit
        self.embed_dim: int = vit.embed_dim
        self.patch_size: int = vit.patch_embed.patch_size[0]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        height, width = x.shape[-2:]
        if height % self.patch_size or width % self.patch_size:
            raise ValueError(
                f"encoder input {height}x{width} is not a multiple of the patch size {self.patch_size}"
            )
        return self.vit.forward_intermediates(
            x, indices=list(FEATURE_BLOCKS), output_fmt="NCHW", intermediates_only=True, norm=True
        )
