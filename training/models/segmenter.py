"""Whole models that take a raw (B, 1, H, W) section and return (B, C, H, W) logits at the same H, W.

A model carries its preprocessing (the input scaling's name and the statistics as buffers), so a pickled
or registered model still takes raw sections.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.errors import UnknownKeyError
from training.lookup import unknown_key_message
from training.models.encoder import DinoV2Encoder
from training.models.input_scaling import INPUT_SCALINGS, InputScaling
from training.models.unet import UNET_STRIDE, UNet


def _known(kind: str, key: str, known: tuple[str, ...] | dict) -> str:
    if key not in known:
        raise UnknownKeyError(unknown_key_message(kind, key, known))
    return key


class RawSectionModel(nn.Module):
    """Holds the input scaling, the normalization statistics as buffers, and what the run's params record
    about the model."""

    def __init__(self, input_mean: float, input_std: float, weights_source: str, finetune_mode: str,
                 input_scaling: str = "zscore") -> None:
        super().__init__()
        if not input_std > 0:
            raise ValueError(f"input_std must be positive, got {input_std}")
        self.input_scaling = _known("input scaling", input_scaling, INPUT_SCALINGS)
        self.register_buffer("input_mean", torch.tensor(float(input_mean)))
        self.register_buffer("input_std", torch.tensor(float(input_std)))
        self.weights_source = weights_source
        self.finetune_mode = finetune_mode

    @property
    def scaling(self) -> InputScaling:
        return INPUT_SCALINGS[self.input_scaling]

    @staticmethod
    def check_batch(x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected a raw section batch of shape (B, 1, H, W), got {tuple(x.shape)}")


class VitSegmenter(RawSectionModel):
    """Scale and resize to the ViT grid (see `input_scaling`), repeat to 3 channels, encode, decode at the
    input's H, W."""

    def __init__(
        self,
        encoder: DinoV2Encoder,
        decoder: nn.Module,
        vit_input_shape: tuple[int, int],
        *,
        input_mean: float = 0.0,
        input_std: float = 1.0,
        input_scaling: str = "zscore",
        weights_source: str = "none",
        finetune_mode: str = "full",
    ) -> None:
        super().__init__(input_mean, input_std, weights_source, finetune_mode, input_scaling)
        self.encoder = encoder
        self.decoder = decoder
        self.vit_input_shape = tuple(vit_input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_batch(x)
        size = (x.shape[-2], x.shape[-1])
        x = self.scaling.vit(x, self.input_mean, self.input_std, self.vit_input_shape)
        features = self.encoder(x.expand(-1, 3, -1, -1))
        return self.decoder(features, size)


def _geofm_unet(unet: UNet, x: torch.Tensor) -> torch.Tensor:
    """Edge-pad to a multiple of 16, upsample the bottleneck, crop back."""
    height, width = x.shape[-2:]
    pad_bottom, pad_right = -height % UNET_STRIDE, -width % UNET_STRIDE
    x = F.pad(x, (0, pad_right, 0, pad_bottom), mode="replicate")
    return unet(x, bottleneck="upsample")[..., :height, :width]


def _authors_unet(unet: UNet, x: torch.Tensor) -> torch.Tensor:
    """The authors' forward: the section as it is (pooling floors odd sizes), the bottleneck zero-padded."""
    return unet(x, bottleneck="zero_pad")


UNET_FORWARDS = {"geofm": _geofm_unet, "authors": _authors_unet}


class UNetSegmenter(RawSectionModel):
    """Scale (see `input_scaling`), run the UNet on the native section by `unet_forward` (geofm | authors)."""

    def __init__(self, unet: UNet, *, input_mean: float = 0.0, input_std: float = 1.0,
                 input_scaling: str = "zscore", unet_forward: str = "geofm") -> None:
        super().__init__(input_mean, input_std, "none", "full", input_scaling)
        self.unet = unet
        self.unet_forward = _known("UNet forward", unet_forward, UNET_FORWARDS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_batch(x)
        x = self.scaling.unet(x, self.input_mean, self.input_std)
        return UNET_FORWARDS[self.unet_forward](self.unet, x)
