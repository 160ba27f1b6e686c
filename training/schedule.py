"""Learning-rate schedules, stepped once per optimizer step: linear warmup, then constant or cosine decay."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from training.lookup import lookup


def _warmup(step: int, warmup_steps: int) -> float:
    return (step + 1) / warmup_steps if step < warmup_steps else 1.0


def constant_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """The base learning rate after a linear warmup."""
    return _warmup(step, warmup_steps)


def cosine_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """A linear warmup, then a half cosine from the base learning rate down to 0 at `total_steps`."""
    if step < warmup_steps:
        return _warmup(step, warmup_steps)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


SCHEDULES: dict[str, Callable[[int, int, int], float]] = {
    "constant": constant_factor,
    "cosine": cosine_factor,
}


def build_scheduler(name: str, optimizer: Optimizer, *, epochs: int, warmup_epochs: int,
                    steps_per_epoch: int) -> LambdaLR:
    """A per-step scheduler multiplying the optimizer's learning rate by the schedule `name`."""
    factor = partial(lookup("schedule", name, SCHEDULES), warmup_steps=warmup_epochs * steps_per_epoch,
                     total_steps=epochs * steps_per_epoch)
    return LambdaLR(optimizer, factor)
