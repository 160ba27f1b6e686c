"""The ViT fixed to one task's patch grid: position embeddings resampled by the official DINOv2 formula.

The official DINOv2 forward (the authors' too) resamples the pretrained square grid of position embeddings
(37 x 37 for the 518-pixel checkpoints) to the input's grid on every forward, bicubic by the scale factors
((gh + 0.1) / 37, (gw + 0.1) / 37), without antialiasing, and uses the grid as it is when the input has
exactly the pretrained number of patches and a square size. Each task's grid is fixed, so by default
(`position_grid="task"`) that resampling runs once, when the model is built, and the forward only adds the
stored embeddings (full fine-tuning then trains the task grid). With `position_grid="source"` the
pretrained grid stays the parameter and is resampled in every forward, as the authors' code does (full
fine-tuning then trains the 37 x 37 grid); the forward is the same function of the same numbers.
"""

from __future__ import annotations

import math

import timm
import torch
import torch.nn.functional as F
from timm.models.vision_transformer import VisionTransformer
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


class SourceGridVisionTransformer(VisionTransformer):
    """A timm ViT for one patch grid whose `pos_embed` holds the pretrained square grid, resampled to the
    patch grid by `official_pos_embed` in every forward, as the authors' (and the official) forward does."""

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        prefix = [token.expand(x.shape[0], -1, -1) for token in (self.cls_token, self.reg_token)
                  if token is not None]
        pos_embed = official_pos_embed(self.pos_embed, self.patch_embed.grid_size, self.num_prefix_tokens)
        return self.pos_drop(torch.cat([*prefix, x], dim=1) + pos_embed)


POSITION_GRIDS = ("task", "source")


def _compute_buffers(model: nn.Module, device: torch.device) -> None:
    """Buffers no state dict holds (DINOv3's rotary embeddings for the grid), left on the meta device by the
    weight-free build, computed again on `device`."""
    for module in model.modules():
        meta = [name for name, buffer in module.named_buffers(recurse=False) if buffer.is_meta]
        for name in meta:
            setattr(module, name, torch.empty_like(getattr(module, name), device=device))
        if meta and hasattr(module, "init_non_persistent_buffers"):
            module.init_non_persistent_buffers()


def vit_for_grid(vit: nn.Module, grid: tuple[int, int], position_grid: str = "task") -> nn.Module:
    """The timm ViT `vit` rebuilt to take exactly `grid` x patch-size inputs, sharing `vit`'s weight tensors,
    its position embeddings resampled by `official_pos_embed`: once (`position_grid="task"`), or in every
    forward from the pretrained grid, which stays the parameter (`"source"`)."""
    if position_grid not in POSITION_GRIDS:
        raise ValueError(f"unknown position grid {position_grid!r}; known: {', '.join(POSITION_GRIDS)}")
    patch = vit.patch_embed.patch_size[0]
    img_size = (grid[0] * patch, grid[1] * patch)
    with torch.device("meta"):  # weights come from `vit`: skip a random initialisation
        fixed = timm.create_model(vit.pretrained_cfg["architecture"], pretrained=False, num_classes=0,
                                  img_size=img_size, dynamic_img_size=False)
    state = vit.state_dict()
    if "pos_embed" in state:  # DINOv3 has none: its rotary embeddings are computed for the grid
        with torch.no_grad():
            embedded_prefix = 0 if vit.no_embed_class else vit.num_prefix_tokens  # registers: no position
            state["pos_embed"] = official_pos_embed(state["pos_embed"], grid, embedded_prefix)
    fixed.load_state_dict(state, strict=True, assign=True)
    _compute_buffers(fixed, vit.cls_token.device)
    if position_grid == "source":  # the class token and the pretrained grid, resampled per forward
        if fixed.no_embed_class or type(fixed) is not VisionTransformer:
            raise ValueError(f"position_grid 'source' needs a timm VisionTransformer with the class token's "
                             f"position embedded; got {type(fixed).__name__}")
        fixed.__class__ = SourceGridVisionTransformer
        fixed.pos_embed = nn.Parameter(vit.pos_embed.detach())
    return fixed
