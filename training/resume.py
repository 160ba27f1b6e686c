"""Resuming a training from its last checkpoint to exactly the weights an uninterrupted run would reach:
the progress a checkpoint holds besides the model, optimizer, scheduler and RNG states, and the checks that
only an identical training resumes there."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from training.checkpoint import check_trainable_state, load_checkpoint, load_trainable_state
from training.fit_config import RESUMABLE_CHANGES, FitConfig, setting_default
from training.seeding import restore_rng_state

LAST_CHECKPOINT = "last.pt"


@dataclass
class Progress:
    """What a resumed run needs besides the model, optimizer, scheduler and RNG states; `best_model` holds
    the best epoch's trainable parameters and buffers."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_miou: float = -math.inf
    best_model: dict[str, torch.Tensor] = field(default_factory=dict)


def resume(path: Path, config: FitConfig, model: nn.Module, frozen: str, optimizer: Optimizer,
            scheduler: LRScheduler) -> Progress:
    checkpoint = load_checkpoint(path)
    saved, current = checkpoint["config"], config.as_dict()
    # A setting added since the checkpoint was written had its default then.
    changed = [k for k in current if k not in RESUMABLE_CHANGES
               and (saved[k] if k in saved else setting_default(k)) != current[k]]
    if changed:
        raise ValueError(f"cannot resume from {path}: settings changed since it was written: "
                         + ", ".join(f"{k} {saved.get(k)!r} -> {current[k]!r}" for k in changed)
                         + "; use another checkpoint folder or delete it")
    check_trainable_state(model, checkpoint["model"], f"checkpoint {path}")
    if checkpoint["frozen_fingerprint"] != frozen:
        raise ValueError(f"cannot resume from {path}: the model's frozen parameters differ from those it was "
                         "trained with; build the model from the same encoder weights and seed, or delete "
                         "the checkpoint folder")
    load_trainable_state(model, checkpoint["model"], f"checkpoint {path}")
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    restore_rng_state(checkpoint["rng"])
    # No best_model: the checkpoint's epoch is the best one (loaded tensors are not the model's own).
    best_model = checkpoint["model"] if checkpoint["best_model"] is None else checkpoint["best_model"]
    return Progress(checkpoint["epoch"], checkpoint["history"], checkpoint["best_epoch"],
                     checkpoint["best_val_miou"], best_model)
