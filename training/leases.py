"""The device a training runs on, as the stages see it: the lease interfaces (implemented by
`pipelines.orchestration.devices.LockFileDevicePool`) and the one "reuse, else lease a device" step both
front doors take before a training."""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from training.settings import Settings
    from training.tracking import TrainingStore

REUSED = "none: every seed reuses its finished training"
"""The device label of a training whose seeds all finished identically before: it leases no device."""


class DeviceLease(Protocol):
    """The GPU(s) or CPU slot one training holds."""

    @property
    def label(self) -> str: ...

    def recorded(self, store: TrainingStore) -> TrainingStore: ...

    def activate(self) -> AbstractContextManager[object]: ...


class DevicePool(Protocol):
    """The machine's devices, leased one training at a time each."""

    def lease(self) -> AbstractContextManager[DeviceLease]: ...


def lease_unless_reused(stack: ExitStack, pool: DevicePool, settings: Settings, root: Path, task: str,
                        model: str, store: TrainingStore) -> tuple[TrainingStore, str]:
    """Lease a device from `pool` for the life of `stack` and make it current, unless every seed of
    `task` x `model` already finished identically (then nothing waits behind busy GPUs to be reused).
    Returns the store the training logs to (recording the device) and the device's label."""
    from training.device_present import check_device_present
    from training.stages.training_stage import finished_already

    check_device_present(settings.train.device)
    if finished_already(settings, root, task, model, store):
        return store, REUSED
    lease = stack.enter_context(pool.lease())
    stack.enter_context(lease.activate())
    return lease.recorded(store), lease.label
