"""How a raw section becomes the network's input, by name (`model.input_scaling`).

- `zscore` (ours): (x - mean) / std with the training split's statistics; for the ViT, then resized to the
  patch grid x 14 (bilinear, antialiased, in floating point).
- `authors` (the paper's): the ViT sees `uint8(x)` resized as a Pillow image (bilinear, antialiased, in
  8-bit fixed point) and divided by 255, as their loader's `ToTensor`; the UNet sees x / 255 at full size.
  No mean or std is used. Values outside [0, 256) wrap modulo 256, as numpy's cast does on x86-64.

Each returns one channel; the ViT segmenter repeats it to 3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from training.models.pil_resize import numpy_uint8, pil_bilinear_resize

# What the authors' loader divides by: ToTensor's 8-bit range, also applied to the UNet's float input.
BYTE_RANGE = 255


def _zscore_vit(x: Tensor, mean: Tensor, std: Tensor, size: tuple[int, int]) -> Tensor:
    x = (x - mean) / std
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _zscore_unet(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return (x - mean) / std


def _authors_vit(x: Tensor, mean: Tensor, std: Tensor, size: tuple[int, int]) -> Tensor:
    pixels = pil_bilinear_resize(numpy_uint8(x), size)
    return (pixels.to(torch.float32) / BYTE_RANGE).to(x.dtype)  # ToTensor divides in float32


def _authors_unet(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    return x / BYTE_RANGE


@dataclass(frozen=True)
class InputScaling:
    """vit(x, mean, std, size): (B, 1, *size); unet(x, mean, std): (B, 1, H, W). x: raw (B, 1, H, W)."""

    vit: Callable[[Tensor, Tensor, Tensor, tuple[int, int]], Tensor]
    unet: Callable[[Tensor, Tensor, Tensor], Tensor]


INPUT_SCALINGS: dict[str, InputScaling] = {
    "zscore": InputScaling(_zscore_vit, _zscore_unet),
    "authors": InputScaling(_authors_vit, _authors_unet),
}
