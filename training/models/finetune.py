"""Fine-tuning modes of the encoder (frozen, full, LoRA through peft) and the merge of LoRA weights."""

from __future__ import annotations

import copy
from collections.abc import Callable

from peft import LoraConfig, LoraModel
from torch import nn

from training.lookup import lookup
from training.models.encoder import DinoV2Encoder

# LoRA on the attention's fused qkv and its output projection, in every block (not patch_embed.proj).
LORA_TARGETS = r"blocks\.\d+\.attn\.(qkv|proj)"
# loralib's default alpha, as in the authors' LoRA layers: updates are scaled by alpha / rank.
LORA_ALPHA = 1
_ADAPTER = "default"


def _freeze(encoder: DinoV2Encoder, lora_rank: int) -> None:
    encoder.requires_grad_(False)


def _train_fully(encoder: DinoV2Encoder, lora_rank: int) -> None:
    encoder.requires_grad_(True)


def _add_lora(encoder: DinoV2Encoder, lora_rank: int) -> None:
    if lora_rank < 1:
        raise ValueError(f"lora_rank must be at least 1, got {lora_rank}")
    config = LoraConfig(r=lora_rank, lora_alpha=LORA_ALPHA, lora_dropout=0.0, target_modules=LORA_TARGETS)
    encoder.vit = LoraModel(encoder.vit, config, _ADAPTER)  # freezes everything but the LoRA factors


FINETUNE_MODES: dict[str, Callable[[DinoV2Encoder, int], None]] = {
    "frozen": _freeze,
    "full": _train_fully,
    "lora": _add_lora,
}


def apply_finetune(encoder: DinoV2Encoder, mode: str, lora_rank: int = 8) -> None:
    """Sets which encoder parameters train: none (`frozen`), all (`full`) or only LoRA factors (`lora`)."""
    lookup("fine-tuning mode", mode, FINETUNE_MODES)(encoder, lora_rank)


def merge_lora(model: nn.Module) -> nn.Module:
    """A copy of `model` with every LoRA-wrapped ViT merged into plain timm weights (same outputs).

    The copy holds no peft module, so it pickles and loads without peft's wrappers; a model without
    LoRA comes back as an unchanged copy. `model` itself is left as it is.
    """
    merged = copy.deepcopy(model)
    for module in merged.modules():
        if isinstance(module, DinoV2Encoder) and isinstance(module.vit, LoraModel):
            module.vit = module.vit.merge_and_unload()
    return merged
