"""The names a configuration can choose from (networks, fine-tuning modes, encoders, losses, schedules)
and how a benchmark model key is spelled: `unet`, or `<network>-<mode>` for a ViT network and its mode.

Light on purpose: the settings import this, not the heavy registries (`training.models`, `training.losses`,
`training.schedule`), whose keys a test checks against these names.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.encoders import ENCODERS as ENCODERS  # the names the settings accept

NETWORKS = ("unet", "linear", "pup", "mla", "dpt")
FINETUNE_MODES = ("frozen", "full", "lora")
LOSSES = ("cross_entropy", "dice", "weighted_dice", "focal")
SCHEDULES = ("constant", "cosine")
FULLY_TRAINED_NETWORKS = ("unet",)
VIT_NETWORKS = tuple(name for name in NETWORKS if name not in FULLY_TRAINED_NETWORKS)


@dataclass(frozen=True)
class ModelKey:
    """One benchmark model: a network and, for the ViT networks, its fine-tuning mode."""

    network: str
    mode: str

    @property
    def key(self) -> str:
        return self.network if self.network in FULLY_TRAINED_NETWORKS else f"{self.network}-{self.mode}"


def parse_model_key(key: str) -> ModelKey:
    """`unet` -> (unet, full); `mla-lora` -> (mla, lora). Anything else is an error naming the key."""
    network, _, mode = str(key).partition("-")
    if network in FULLY_TRAINED_NETWORKS and not mode:
        return ModelKey(network, "full")
    if network not in VIT_NETWORKS:
        raise ValueError(f"unknown network {network!r} in model {key!r}; known: unet (alone), "
                         f"{', '.join(VIT_NETWORKS)} (with a mode)")
    if mode not in FINETUNE_MODES:
        raise ValueError(f"unknown fine-tuning mode {mode!r} in model {key!r}; known: "
                         f"{', '.join(FINETUNE_MODES)} (as `{network}-<mode>`)")
    return ModelKey(network, mode)
