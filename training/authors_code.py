"""The authors' computation as geofm settings, each with the place in their code it follows, and what a
configuration does differently (listed under the report's paper-protocol tables).

Sources are files of ProgrammerZXG/Cross-Domain-Foundation-Model-Adaptation (`demo_classification.py`, their
training script; `run/*.sh`, the released runs, all of MLA). The `paper` profile sets each of these; the
`paper-scripts` profile too, and its models are meant to fine-tune fully, as the scripts do.
"""

from __future__ import annotations

from dataclasses import dataclass

from training.catalog import FULLY_TRAINED_NETWORKS, parse_model_key
from training.settings import Settings


@dataclass(frozen=True)
class AuthorsSetting:
    """One setting (a dotted key of `params.yaml`), the value that reproduces the authors' code, and the
    file:line of their code it follows."""

    key: str
    value: object
    source: str


AUTHORS_CODE = (
    AuthorsSetting("data.source", "zenodo", "README.md (Zenodo record 12798750)"),
    AuthorsSetting("model.encoder", "vit_small_patch14_dinov2",
                   "demo_classification.py get_args (--vt default small: DINOv2 ViT-S/14)"),
    AuthorsSetting("model.input_scaling", "authors", "dataset.py BasicDataset (uint8, PIL resize, ToTensor)"),
    AuthorsSetting("model.unet_forward", "authors", "models/unet.py U_Net.forward (zero-padded bottleneck)"),
    AuthorsSetting("model.position_grid", "source",
                   "models/vision_transformer.py interpolate_pos_encoding (the 37x37 grid, per forward)"),
    AuthorsSetting("model.lora_rank", 8, "models/vision_transformer_lora.py (loralib r=8, alpha 1)"),
    AuthorsSetting("train.epochs", 100, "demo_classification.py get_args (--epochs default 100)"),
    AuthorsSetting("train.batch_size", "paper", "demo_classification.py:35-64 (batch size per task)"),
    AuthorsSetting("train.lr", 1e-5, "run/mla_*.sh:10 (-l 1e-5)"),
    AuthorsSetting("train.weight_decay", 0.01, "demo_classification.py:134 (AdamW weight_decay=0.01)"),
    AuthorsSetting("train.betas", (0.7, 0.999), "demo_classification.py:134 (AdamW betas=[0.7,0.999])"),
    AuthorsSetting("train.schedule", "constant", "demo_classification.py:170 (no schedule unless -a True)"),
    AuthorsSetting("train.warmup_epochs", 0, "demo_classification.py:170 (no warm-up unless -a True)"),
    AuthorsSetting("train.loss", "weighted_dice", "run/mla_*.sh:8 (-loss wdice), demo_classification.py:146"),
    AuthorsSetting("train.seeds", (1234,), "demo_classification.py:23-27 (seed 1234)"),
    AuthorsSetting("train.batch_composition", "mirror_pairs",
                   "demo_classification.py:118,185 (each item a section and its mirror, reshaped b1*b2)"),
    AuthorsSetting("train.regime", "authors",
                   "demo_classification.py:166 (net.train() once), :224 (net.eval() every epoch), "
                   ":253 (best per-batch mIoU on the valid split, the one reported)"),
)
PRECISION_NOTE = ("precision: bf16 autocast on CUDA, theirs fp32 (no setting; tests/test_training_parity.py "
                  "checks that bf16 keeps the fp32 classes)")


def _value(settings: Settings, key: str) -> object:
    value: object = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value


def paper_differences(settings: Settings) -> list[str]:
    """What separates runs under `settings` from the authors' computation, one line each: every setting of
    `AUTHORS_CODE` not at their value, random encoder weights, fine-tuning modes other than the paper's
    LoRA, the selection split, and the precision."""
    lines = []
    for setting in AUTHORS_CODE:
        value = _value(settings, setting.key)
        if value != setting.value and setting.key != "train.regime":
            lines.append(f"`{setting.key}: {value}` (theirs `{setting.value}`: {setting.source})")
    if settings.model.weights == "none":
        lines.append("`model.weights: none`: a randomly initialised encoder (theirs: DINOv2's weights)")
    vit_models = [model for model in map(parse_model_key, settings.benchmark_models)
                  if model.network not in FULLY_TRAINED_NETWORKS]
    modes = sorted({model.mode for model in vit_models} - {"lora"})
    if modes:
        lines.append(f"fine-tuning {', '.join(modes)} (the paper's text: LoRA; their released scripts: full, "
                     "`run/mla_*.sh:9` -cp unfrozen)")
    if settings.train.regime == "authors":
        lines.append("selection: the epoch with the best per-batch mIoU on the test split, as theirs: "
                     "OPTIMISTIC, the split reported selected the epoch (`train.regime: authors`)")
    else:
        lines.append("selection: the epoch with the best pooled mIoU on a validation split carved from "
                     "train, theirs on the test split (`train.regime: authors`, demo_classification.py:253); "
                     "train mode every epoch, theirs eval mode from epoch 2 (:166, :224)")
    return [*lines, PRECISION_NOTE]
