"""Whole models that take a raw (B, 1, H, W) section and return (B, C, H, W) logits at the same H, W."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.models.encoder import DinoV2Encoder
from training.models.unet import UNET_STRIDE, UNet


class RawSectionModel(nn.Module):
    """Holds the normalization statistics as buffers and what the run's params record about the model."""

    def __init__(self, input_mean: float, input_std: float, weights_source: str, finetune_mode: str) -> None:
        super().__init__()
        if not input_std > 0:
            raise ValueError(f"input_std must be positive, got {input_std}")
        self.register_buffer("input_mean", torch.tensor(float(input_mean)))
        self.register_buffer("input_std", torch.tensor(float(input_std)))
        self.weights_source = weights_source
        self.finetune_mode = finetune_mode

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected a raw section batch of shape (B, 1, H, W), got {tuple(x.shape)}")
        return (x - self.input_mean) / self.input_std


class VitSegmenter(RawSectionModel):
    """Normalize, resize to the ViT grid (bilinear, antialiased like the authors' PIL resize), repeat to 3
    channels, encode, decode at the input's H, W."""

    def __init__(
        self,
        encoder: DinoV2Encoder,
        decoder: nn.Module,
        vit_input_shape: tuple[int, int],
        *,
        input_mean: float = 0.0,
        input_std: float = 1.0,
        weights_source: str = "none",
        finetune_mode: str = "full",
    ) -> None:
        super().__init__(input_mean, input_std, weights_source, finetune_mode)
        self.encoder = encoder
        self.decoder = decoder
        self.vit_input_shape = tuple(vit_input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (x.shape[-2], x.shape[-1])
        x = self.normalize(x)
        if size != self.vit_input_shape:
            x = F.interpolate(
                x, size=self.vit_input_shape, mode="bilinear", align_corners=False, antialias=True
            )
        features = self.encoder(x.expand(-1, 3, -1, -1))
        return self.decoder(features, size)


class UNetSegmenter(RawSectionModel):
    """Normalize, edge-pad to a multiple of 16, run the UNet on the native section, crop back."""

    def __init__(self, unet: UNet, *, input_mean: float = 0.0, input_std: float = 1.0) -> None:
        super().__init__(input_mean, input_std, weights_source="none", finetune_mode="full")
        self.unet = unet

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        pad_bottom, pad_right = -height % UNET_STRIDE, -width % UNET_STRIDE
        x = F.pad(self.normalize(x), (0, pad_right, 0, pad_bottom), mode="replicate")
        return self.unet(x)[..., :height, :width]
