"""Checkpoint files written atomically, and the part of a model's state they hold.

A checkpoint holds what training changes: the trainable parameters and every buffer (`trainable_state`).
Frozen parameters (a frozen or LoRA-adapted encoder: 22M for ViT-S) are never written: a resumed run takes
them from the model it is given, built from the same settings, and `frozen_fingerprint` proves they match.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from training.atomic import write_atomic_with

_SHOWN_KEYS = 5


def save_atomic(payload: dict[str, Any], path: Path) -> None:
    """torch.save `payload` to `path` so that `path` is always either the old or the complete new file."""
    write_atomic_with(Path(path), lambda handle: torch.save(payload, handle))


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint written by `save_atomic` onto the CPU; a damaged file is an error naming it."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"cannot read checkpoint {path}: {error}") from error


def _frozen_names(model: nn.Module) -> set[str]:
    return {name for name, p in model.named_parameters(remove_duplicate=False) if not p.requires_grad}


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict without its frozen parameters (the model's own tensors, not copies)."""
    frozen = _frozen_names(model)
    return {name: tensor for name, tensor in model.state_dict().items() if name not in frozen}


def cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached copies of `state`'s tensors on the CPU, unaffected by further training."""
    return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}


def _listed(keys: set[str]) -> str:
    return f"[{', '.join(sorted(keys)[:_SHOWN_KEYS])}] ({len(keys)} in all)"


def check_trainable_state(model: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """The keys of `state` must be exactly the model's trainable parameters and buffers, else an error
    names `origin` and the keys at fault."""
    expected = set(trainable_state(model))
    missing, unexpected = expected - set(state), set(state) - expected
    if missing or unexpected:
        raise ValueError(f"{origin} does not fit the model (other network or fine-tuning mode?): "
                         f"missing {_listed(missing)}, unexpected {_listed(unexpected)}")


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor], origin: str) -> None:
    """Put a `trainable_state` into `model`, whose frozen parameters stay (see `check_trainable_state`)."""
    check_trainable_state(model, state, origin)
    model.load_state_dict(state, strict=False)


def frozen_fingerprint(model: nn.Module) -> str:
    """A SHA-256 of the frozen parameters' names, dtypes, shapes and values: equal for models built alike."""
    digest = hashlib.sha256()
    parameters = dict(model.named_parameters(remove_duplicate=False))
    for name in sorted(_frozen_names(model)):
        tensor = parameters[name].detach().to("cpu").contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
