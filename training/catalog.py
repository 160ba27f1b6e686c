"""The names a configuration can choose from (networks, fine-tuning modes, encoders, losses, schedules)
and how a benchmark model key is spelled: `unet`, or `<network>-<mode>` for a ViT network and its mode, on
`model.encoder`, or `<network>-<mode>.<encoder>` on another encoder (the encoder scan, docs/models.md).

Light on purpose: the settings import this, not the heavy registries (`training.models`, `training.losses`,
`training.schedule`), whose keys a test checks against these names.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.encoders import ENCODERS, REFUSED_ENCODERS, refusal_message

NETWORKS = ("unet", "linear", "pup", "mla", "dpt")
FINETUNE_MODES = ("frozen", "full", "lora")
LOSSES = ("cross_entropy", "dice", "weighted_dice", "focal")
SCHEDULES = ("constant", "cosine")
FULLY_TRAINED_NETWORKS = ("unet",)
VIT_NETWORKS = tuple(name for name in NETWORKS if name not in FULLY_TRAINED_NETWORKS)
ENCODER_SEPARATOR = "."
"""Between a ViT model and its encoder in a scan key: safe in DVC stage names, paths, Dagster partition keys
and MLflow model names (`models:/geofm-salt-mla-lora.vit_large_patch16_dinov3@best`)."""


@dataclass(frozen=True)
class ModelKey:
    """One benchmark model: a network and, for the ViT networks, its fine-tuning mode and the encoder it
    scans (None: `model.encoder`)."""

    network: str
    mode: str
    encoder: str | None = None

    @property
    def key(self) -> str:
        base = self.network if self.network in FULLY_TRAINED_NETWORKS else f"{self.network}-{self.mode}"
        return base if self.encoder is None else f"{base}{ENCODER_SEPARATOR}{self.encoder}"

    def encoder_or(self, configured: str) -> str:
        """The encoder this model trains: its own, or the `configured` one (`model.encoder`)."""
        return self.encoder or configured


def _scanned_encoder(encoder: str, key: str) -> str:
    if encoder in REFUSED_ENCODERS:
        raise ValueError(refusal_message(encoder))
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r} in model {key!r}; known: {', '.join(ENCODERS)}")
    return encoder


def parse_model_key(key: str) -> ModelKey:
    """`unet` -> (unet, full); `mla-lora` -> (mla, lora); `mla-lora.vit_large_patch16_dinov3` -> (mla, lora,
    that encoder). Anything else is an error naming the key."""
    model, separator, encoder = str(key).partition(ENCODER_SEPARATOR)
    network, _, mode = model.partition("-")
    if separator:
        if network not in VIT_NETWORKS:
            raise ValueError(f"model {key!r} names an encoder, but only the ViT networks "
                             f"({', '.join(VIT_NETWORKS)}) have one")
        base = parse_model_key(model)
        return ModelKey(base.network, base.mode, _scanned_encoder(encoder, key))
    if network in FULLY_TRAINED_NETWORKS and not mode:
        return ModelKey(network, "full")
    if network not in VIT_NETWORKS:
        raise ValueError(f"unknown network {network!r} in model {key!r}; known: unet (alone), "
                         f"{', '.join(VIT_NETWORKS)} (with a mode)")
    if mode not in FINETUNE_MODES:
        raise ValueError(f"unknown fine-tuning mode {mode!r} in model {key!r}; known: "
                         f"{', '.join(FINETUNE_MODES)} (as `{network}-<mode>`)")
    return ModelKey(network, mode)
