"""Segmentation networks of the benchmark: UNet and the DINOv2 ViT with LINEAR, PUP, MLA or DPT decoders.

`build_model(network, task, ...)` gives a model whose forward takes a raw (B, 1, H, W) section and returns
(B, num_classes, H, W) logits; see `segmenter.py` for what happens in between.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

import torch
from torch import nn

from training.encoders import ENCODERS, encoder_spec
from training.lookup import lookup
from training.models.decoders import DECODERS
from training.models.encoder import DinoV2Encoder
from training.models.finetune import FINETUNE_MODES, apply_finetune, merge_lora
from training.models.input_scaling import INPUT_SCALINGS
from training.models.patch_grid import vit_for_grid
from training.models.segmenter import UNET_FORWARDS, RawSectionModel, UNetSegmenter, VitSegmenter
from training.models.unet import UNet
from training.models.weights import WeightLoadError, create_vit
from training.tasks import RECORD_INPUT_RANGE, TaskSpec

__all__ = [
    "ENCODERS",
    "FINETUNE_MODES",
    "INPUT_SCALINGS",
    "NETWORKS",
    "RawSectionModel",
    "UNET_FORWARDS",
    "WeightLoadError",
    "build_model",
    "count_parameters",
    "merge_lora",
]


def _build_unet(task: TaskSpec, *, input_mean: float, input_std: float, input_scaling: str, unet_forward: str,
                **_: object) -> RawSectionModel:
    """The UNet trains from scratch and fully: the encoder, weights and fine-tuning settings do not apply."""
    return UNetSegmenter(UNet(1, task.num_classes), input_mean=input_mean, input_std=input_std,
                         input_scaling=input_scaling, unet_forward=unet_forward)


def _build_vit(
    decoder_class: type[nn.Module],
    task: TaskSpec,
    *,
    encoder: str,
    weights: str | Path | Mapping[str, torch.Tensor],
    finetune: str,
    lora_rank: int,
    input_mean: float,
    input_std: float,
    input_scaling: str,
    position_grid: str,
    **_: object,
) -> RawSectionModel:
    spec = encoder_spec(encoder)
    task = task.for_patch_size(spec.patch_size)
    vit, weights_source = create_vit(encoder, weights)
    dino = DinoV2Encoder(vit_for_grid(vit, task.patch_grid, position_grid), spec.levels)
    apply_finetune(dino, finetune, lora_rank)
    return VitSegmenter(
        dino,
        decoder_class(dino.embed_dim, task.num_classes),
        task.vit_input_shape,
        input_mean=input_mean,
        input_std=input_std,
        input_scaling=input_scaling,
        weights_source=weights_source,
        finetune_mode=finetune,
    )


_BUILDERS: dict[str, Callable[..., RawSectionModel]] = {
    "unet": _build_unet,
    **{name: partial(_build_vit, decoder) for name, decoder in DECODERS.items()},
}
NETWORKS: tuple[str, ...] = tuple(_BUILDERS)


def build_model(
    network: str,
    task: TaskSpec,
    *,
    encoder: str = "vit_small_patch14_dinov2",
    weights: str | Path | Mapping[str, torch.Tensor] = "none",
    finetune: str = "lora",
    lora_rank: int = 8,
    input_mean: float = 0.0,
    input_std: float = 1.0,
    input_scaling: str = "zscore",
    unet_forward: str = "geofm",
    position_grid: str = "task",
) -> RawSectionModel:
    """The `network` for `task`. `weights`: "hub", "none" (random, with a warning), a checkpoint path or a
    state dict; `finetune`: frozen | full | lora (ViT networks only); `input_scaling`: zscore (with
    `input_mean`/`input_std`) | authors (see `input_scaling.py`); `unet_forward`: geofm | authors (the
    UNet only). `encoder`: a name of `training.encoders`; the task's patch grid follows its patch size
    (`TaskSpec.for_patch_size`) and the MLA/DPT decoders read its `levels`. The ViT is fixed to that grid,
    its DINOv2 position embeddings resampled by the official formula once (`position_grid="task"`) or in
    every forward from the pretrained grid (`"source"`, see `patch_grid.py`). The model records
    `weights_source` and `finetune_mode` (for the run's params), `training_shape` and `input_range` (for
    survey prediction) as attributes."""
    model = lookup("network", network, _BUILDERS)(
        task,
        encoder=encoder,
        weights=weights,
        finetune=finetune,
        lora_rank=lora_rank,
        input_mean=input_mean,
        input_std=input_std,
        input_scaling=input_scaling,
        unet_forward=unet_forward,
        position_grid=position_grid,
    )
    # What survey prediction needs (training.survey.contract): the tile size, the amplitude convention.
    model.training_shape = task.shape
    model.input_range = RECORD_INPUT_RANGE
    return model


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """The number of parameters of `module` (each shared tensor once), or of those that require grad."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
