"""`train.device` against this machine: a GPU it names must be here, checked before any run is opened."""

from __future__ import annotations

from training.errors import GeofmError


class DeviceMissingError(GeofmError, RuntimeError):
    """The configured device is not on this machine."""


def check_device_present(name: str) -> None:
    """Refuse `train.device` `cuda` or `cuda:N` when this machine has no such GPU, listing what it has."""
    if not name.startswith("cuda"):
        return
    import torch  # only a GPU name needs it: a reused training on the CPU answers before torch loads

    count = torch.cuda.device_count()
    index = int(name.partition(":")[2] or 0)
    if index >= count:
        here = f"auto, cpu, cuda:0 to cuda:{count - 1}" if count else "auto, cpu (no CUDA device here)"
        raise DeviceMissingError(f"train.device: {name!r} is not on this machine; allowed here: {here}")
