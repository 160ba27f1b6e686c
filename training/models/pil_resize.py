"""The authors' image path in torch, bit for bit: numpy's cast to uint8, then Pillow's bilinear resize.

The authors' loader does `Image.fromarray(np.uint8(section))`, `T.Resize((gh * 14, gw * 14))` (Pillow's
bilinear, which widens its filter when shrinking, i.e. antialiases) and `T.ToTensor()`. Pillow resizes
8-bit images in fixed point: a horizontal pass, then a vertical one, each rounding to 8 bits
(libImaging/Resample.c). Here the same integer arithmetic runs on whole batches, on any device.

Pillow 13 runs the vertical pass first when the height shrinks much more than the width
(python-pillow/Pillow#9549); the authors' Pillow (9.2, 10.4) always ran the horizontal pass first, as
here. The tasks never shrink a section (their grids round up), and there Pillow 13 also starts horizontally.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

# Pillow's fixed-point precision for 8-bit images (32 - 8 - 2 bits).
PRECISION_BITS = 22
_INT32_LIMIT = 2.0**31


def numpy_uint8(x: torch.Tensor) -> torch.Tensor:
    """What `np.uint8(x)` gives for a float array on x86-64, as int32: values in [0, 256) truncated toward
    zero; others wrap modulo 256 (the C cast is undefined there; numpy, on x86-64, keeps the low 8 bits of
    the truncated int32, and gives 0 for NaN and for values beyond +-2**31)."""
    representable = (x >= -_INT32_LIMIT) & (x < _INT32_LIMIT)  # False for NaN
    whole = torch.where(representable, x, torch.zeros_like(x)).trunc().to(torch.int32)
    return torch.bitwise_and(whole, 0xFF)  # the low byte, of negative values too (two's complement)


@functools.lru_cache(maxsize=32)
def _coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's `precompute_coeffs` and `normalize_coeffs_8bpc` for the bilinear filter (support 1), in the
    same double-precision steps: per output pixel, the input pixels of its window (out, taps) and their
    fixed-point weights (out, taps), 0 past the window's end."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    taps = math.ceil(support) * 2 + 1
    center = (np.arange(out_size) + 0.5) * scale
    first = np.maximum(np.trunc(center - support + 0.5), 0).astype(np.int64)
    count = np.minimum(np.trunc(center + support + 0.5), in_size).astype(np.int64) - first
    offsets = np.arange(taps)
    distance = np.abs(((offsets[None, :] + first[:, None]) - center[:, None] + 0.5) * (1.0 / filterscale))
    weights = np.where((offsets[None, :] < count[:, None]) & (distance < 1.0), 1.0 - distance, 0.0)
    total = np.zeros(out_size)
    for tap in range(taps):  # Pillow sums the weights in order
        total += weights[:, tap]
    weights = np.divide(weights, total[:, None], out=weights, where=total[:, None] != 0.0)
    fixed = np.trunc(weights * (1 << PRECISION_BITS) + np.where(weights < 0, -0.5, 0.5)).astype(np.int32)
    return np.minimum(first[:, None] + offsets[None, :], in_size - 1), fixed


def _resample(pixels: torch.Tensor, dim: int, out_size: int) -> torch.Tensor:
    """One Pillow pass along `dim` (-1: horizontal, -2: vertical) of int32 8-bit values."""
    index, weights = (torch.from_numpy(array).to(pixels.device)
                      for array in _coefficients(pixels.shape[dim], out_size))
    shape = (out_size,) if dim == -1 else (out_size, 1)
    total = torch.full((), 1 << (PRECISION_BITS - 1), dtype=torch.int32, device=pixels.device)
    for tap in range(index.shape[1]):
        total = total + pixels.index_select(dim, index[:, tap]) * weights[:, tap].reshape(shape)
    return torch.bitwise_right_shift(total, PRECISION_BITS).clamp_(0, 255)


def pil_bilinear_resize(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """int32 8-bit values (..., H, W) resized to `size` as Pillow's `Image.resize(..., BILINEAR)` does for an
    8-bit image: the horizontal pass first, each pass only where the size changes."""
    height, width = size
    if pixels.shape[-1] != width:
        pixels = _resample(pixels, -1, width)
    if pixels.shape[-2] != height:
        pixels = _resample(pixels, -2, height)
    return pixels
