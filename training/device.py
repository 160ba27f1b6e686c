"""Where and in what precision a model runs: the device a setting names, and bf16 autocast on CUDA (fp32 on
the CPU). Training, evaluation and the benchmark scripts share these two choices."""

from __future__ import annotations

import torch


def resolve_device(name: str) -> torch.device:
    """"auto" is CUDA when available, else the CPU; any other name must be a device torch can use here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"unknown device {name!r}: {error}") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but CUDA is not available here")
    return device


def autocast(device: torch.device) -> torch.autocast:
    """bf16 autocast on CUDA; a no-op on the CPU (fp32)."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
