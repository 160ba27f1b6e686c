"""The encoder registry: every timm DINOv2 and DINOv3 ViT geofm can adapt, with the facts the rest of the
code follows (patch size, depth, width, the blocks the MLA and DPT decoders read), and the encoders refused
for their memory.

Plain data, no torch: the settings validate names against it and the models build from it
(`training.models`). The levels are the outputs of the blocks at the quarters of the depth, as the DPT
paper hooks ViT-B (3/6/9/12) and ViT-L (6/12/18/24) and DINOv2's segmentation heads read ViT-g
(10/20/30/40); the last level is the final output, what LINEAR and SETR-PUP decode.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.errors import GeofmError
from training.lookup import lookup

LEVEL_COUNT = 4
PRETRAINED_PATCHES = 37 * 37
"""DINOv2's pretrained grid of position embeddings (518-pixel checkpoints), counted in `parameters`."""
DEFAULT_ENCODER = "vit_small_patch14_dinov2"
"""The paper's encoder: runs, partitions and registered models of it carry no encoder suffix."""
GIB = 2**30
# float32 bytes per parameter when fully fine-tuned with AdamW: weights, gradients and two moments.
FULL_FINETUNE_BYTES = 16


class EncoderRefusedError(GeofmError, ValueError):
    """An encoder timm ships that geofm does not build: it needs more memory than a training GPU holds."""


def quarter_levels(depth: int) -> tuple[int, ...]:
    """The 0-based blocks the MLA/DPT decoders read: the ends of the depth's four quarters."""
    if depth % LEVEL_COUNT:
        raise ValueError(f"a ViT of {depth} blocks has no four equal quarters to read levels from")
    return tuple(depth * quarter // LEVEL_COUNT - 1 for quarter in range(1, LEVEL_COUNT + 1))


@dataclass(frozen=True)
class EncoderSpec:
    """One timm ViT: `family` dinov2 | dinov3, `size` S | S+ | B | L | g, `registers` extra tokens,
    `parameters` timm's count at the pretrained grid (DINOv2 position embeddings: 37 x 37)."""

    name: str
    family: str
    size: str
    registers: int
    patch_size: int
    depth: int
    embed_dim: int
    parameters: int

    @property
    def levels(self) -> tuple[int, ...]:
        return quarter_levels(self.depth)

    def trainable_parameters(self, mode: str, grid: tuple[int, int], lora_rank: int) -> int:
        """Encoder parameters that train under `mode` on a task of patch `grid` (`position_grid: task`):
        none (`frozen`), LoRA's factors on `attn.qkv` (C -> 3C) and `attn.proj` (C -> C) in every block
        (`lora`), or all, DINOv2's position embeddings at the task grid (`full`)."""
        width = self.embed_dim
        counts = {
            "frozen": 0,
            "lora": self.depth * lora_rank * ((width + 3 * width) + (width + width)),
            "full": self.parameters + (grid[0] * grid[1] - PRETRAINED_PATCHES) * width
            if self.family == "dinov2" else self.parameters,
        }
        return lookup("fine-tuning mode", mode, counts)

    @property
    def label(self) -> str:
        """`DINOv2 ViT-S/14`, `DINOv2 ViT-S/14 reg4`, `DINOv3 ViT-L/16`."""
        registers = f" reg{self.registers}" if self.family == "dinov2" and self.registers else ""
        return f"{self.family.replace('dino', 'DINO')} ViT-{self.size}/{self.patch_size}{registers}"


ENCODER_SPECS: dict[str, EncoderSpec] = {
    spec.name: spec
    for spec in (
        EncoderSpec("vit_small_patch14_dinov2", "dinov2", "S", 0, 14, 12, 384, 22_056_192),
        EncoderSpec("vit_base_patch14_dinov2", "dinov2", "B", 0, 14, 12, 768, 86_579_712),
        EncoderSpec("vit_large_patch14_dinov2", "dinov2", "L", 0, 14, 24, 1024, 304_367_616),
        EncoderSpec("vit_giant_patch14_dinov2", "dinov2", "g", 0, 14, 40, 1536, 1_136_479_232),
        EncoderSpec("vit_small_patch14_reg4_dinov2", "dinov2", "S", 4, 14, 12, 384, 22_057_344),
        EncoderSpec("vit_base_patch14_reg4_dinov2", "dinov2", "B", 4, 14, 12, 768, 86_582_016),
        EncoderSpec("vit_large_patch14_reg4_dinov2", "dinov2", "L", 4, 14, 24, 1024, 304_370_688),
        EncoderSpec("vit_giant_patch14_reg4_dinov2", "dinov2", "g", 4, 14, 40, 1536, 1_136_483_840),
        EncoderSpec("vit_small_patch16_dinov3", "dinov3", "S", 4, 16, 12, 384, 21_586_944),
        EncoderSpec("vit_small_plus_patch16_dinov3", "dinov3", "S+", 4, 16, 12, 384, 28_683_264),
        EncoderSpec("vit_base_patch16_dinov3", "dinov3", "B", 4, 16, 12, 768, 85_641_216),
        EncoderSpec("vit_large_patch16_dinov3", "dinov3", "L", 4, 16, 24, 1024, 303_079_424),
    )
}
ENCODERS: tuple[str, ...] = tuple(ENCODER_SPECS)

REFUSED_ENCODERS: dict[str, int] = {
    "vit_huge_plus_patch16_dinov3": 840_509_440,
    "vit_7b_patch16_dinov3": 6_716_030_976,
}
"""timm's DINOv3 ViTs above L, with their parameter counts."""


def refusal_message(name: str) -> str:
    """Why `name` is refused, with the memory it needs."""
    parameters = REFUSED_ENCODERS[name]
    return (f"encoder {name!r} ({parameters / 1e9:.2f} B parameters) is not offered: its float32 weights "
            f"alone take {parameters * 4 / GIB:.1f} GiB and full fine-tuning with AdamW about "
            f"{parameters * FULL_FINETUNE_BYTES / GIB:.1f} GiB (weights, gradients, two moments) before "
            f"any activation; geofm offers DINOv3 up to vit_large_patch16_dinov3")


def encoder_spec(name: str) -> EncoderSpec:
    """The registered encoder `name`; a refused one says the memory it needs, an unknown one lists the
    known ones."""
    if name in REFUSED_ENCODERS:
        raise EncoderRefusedError(refusal_message(name))
    return lookup("encoder", name, ENCODER_SPECS)
