"""The ViT fixed to one task's patch grid: position embeddings resampled once, by the official DINOv2 formula.

The official DINOv2 forward (the authors' too) resamples the pretrained square grid of position embeddings
(37 x 37 for the 518-pixel checkpoints) to the input's grid on every forward, bicubic by the scale factors
((gh + 0.1) / 37, (gw + 0.1) / 37), without antialiasing, and uses the grid as it is when the input has
exactly the pretrained number of patches and a square size. Each task's grid is fixed, so here that
resampling runs once, when the model is built; the forward then only adds the stored embeddings.
"""

from __future__ import annotations

import math

import timm
import torch
import torch.nn.functional as F
from torch import nn

# The official code adds this to the target grid "to avoid floating point error in the interpolation".
OFFICIAL_OFFSET = 0.1


def official_pos_embed(pos_embed: torch.Tensor, grid: tuple[int, int],
                       num_prefix_tokens: int = 1) -> torch.Tensor:
    """`pos_embed` (1, prefix + M*M, C) of a square M x M grid resampled to `grid` as the official
    `interpolate_pos_encoding` does (computed in float32, returned in the input's dtype)."""
    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    side = math.isqrt(patches.shape[1])
    if side * side != patches.shape[1]:
        raise ValueError(f"position embeddings of {patches.shape[1]} patches do not form a square grid")
    height, width = grid
    if (height, width) == (side, side):  # the official forward uses the pretrained grid as it is
        return pos_embed
    channels = patches.shape[-1]
    square = patches.float().reshape(1, side, side, channels).permute(0, 3, 1, 2)
    scale = ((height + OFFICIAL_OFFSET) / side, (width + OFFICIAL_OFFSET) / side)
    resampled = F.interpolate(square, scale_factor=scale, mode="bicubic")
    if resampled.shape[-2:] != (height, width):
        raise ValueError(f"the official formula gave a {tuple(resampled.shape[-2:])} grid, not {grid}")
    resampled = resampled.permute(0, 2, 3, 1).reshape(1, height * width, channels)
    return torch.cat([prefix.float(), resampled], dim=1).to(pos_embed.dtype)


def vit_for_grid(vit: nn.Module, grid: tuple[int, int]) -> nn.Module:
    """The timm ViT `vit` rebuilt to take exactly `grid` x patch-size inputs (no per-forward resampling),
    sharing `vit`'s weight tensors, its position embeddings resampled by `official_pos_embed`."""
    patch = vit.patch_embed.patch_size[0]
    img_size = (grid[0] * patch, grid[1] * patch)
    with torch.device("meta"):  # weights come from `vit`: skip a random initialisation
        fixed = timm.create_model(vit.pretrained_cfg["architecture"], pretrained=False, num_classes=0,
                                  img_size=img_size, dynamic_img_size=False)
    state = vit.state_dict()
    with torch.no_grad():
        state["pos_embed"] = official_pos_embed(state["pos_embed"], grid, vit.num_prefix_tokens)
    fixed.load_state_dict(state, strict=True, assign=True)
    return fixed
