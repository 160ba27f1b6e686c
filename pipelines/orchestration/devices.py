"""Device leases: every training holds its own GPU(s), or a CPU slot, for as long as it runs.

A lease is an exclusive lock (`filelock`, an `flock` on Unix) on one file per device, in a folder every
process of the machine shares: Dagster steps in one process or in several, `dvc queue` workers and the CLI
agree on who holds which GPU. The operating system releases a lock when its holder ends, even killed, so a
finished, failed or killed training always frees its device. A training waits while every device is held.
"""

from __future__ import annotations

import getpass
import math
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import filelock
import torch

from training.errors import GeofmError
from training.settings import Settings
from training.settings.orchestration import OrchestrationSettings
from training.tracking import Publication, RunTracker, TrainingStore

DeviceKind = Literal["cuda", "cpu"]


class NoDeviceError(GeofmError, TimeoutError):
    """No device became free within the wait allowed, or the settings name devices this machine lacks."""


def default_lease_dir() -> Path:
    """`<temp dir>/geofm-devices-<user>`: one folder per machine and user, whatever the project folder."""
    return Path(tempfile.gettempdir()) / f"geofm-devices-{getpass.getuser()}"


@dataclass(frozen=True)
class LockFileLease:
    """The devices one training holds: `("cuda:2",)`, `("cuda:0", "cuda:1")` or `("cpu",)`."""

    devices: tuple[str, ...]

    @property
    def device(self) -> str:
        """The training's device (the first of a DDP training's)."""
        return self.devices[0]

    @property
    def cuda_visible_devices(self) -> str | None:
        """CUDA_VISIBLE_DEVICES for a process started for this lease (torchrun); None for the CPU."""
        indices = [name.split(":")[1] for name in self.devices if name.startswith("cuda:")]
        return ",".join(indices) or None

    @property
    def label(self) -> str:
        """`cuda:0,cuda:1`: how metadata and MLflow params name the devices."""
        return ",".join(self.devices)

    def recorded(self, store: TrainingStore) -> TrainingStore:
        """`store`, whose training runs also record these devices (MLflow param `device`)."""
        return DeviceRecordingStore(store, self.label)

    def activate(self) -> AbstractContextManager[object]:
        """Make the leased GPU the current CUDA device for the block, so that `device: auto` (plain `cuda`)
        trains on it; the CPU needs nothing."""
        if self.device == "cpu":
            return nullcontext()
        return torch.cuda.device(torch.device(self.device))


@dataclass(frozen=True)
class DeviceRecordingStore:
    """A `TrainingStore` that logs the param `device` into every training run it opens."""

    store: TrainingStore
    device: str

    @contextmanager
    def training_run(self, settings: Settings, task: str, model: str, launcher: str, training_id: str,
                     seed: int) -> Iterator[RunTracker]:
        with self.store.training_run(settings, task, model, launcher, training_id, seed) as tracker:
            tracker.log_params({"device": self.device})
            yield tracker

    def finished_run(self, training_id: str) -> str | None:
        return self.store.finished_run(training_id)

    def publish(self, run_id: str, logged_model_uri: str, task: str, model: str,
                val_miou: float) -> Publication:
        return self.store.publish(run_id, logged_model_uri, task, model, val_miou)


@dataclass(frozen=True)
class LockFileDevicePool:
    """Devices `kind:index` for `indices`, leased `per_lease` at a time through lock files in `folder`.

    For the CPU, the indices are slots (trainings at once), all leasing the device `cpu`."""

    folder: Path
    kind: DeviceKind
    indices: tuple[int, ...]
    per_lease: int = 1
    poll_seconds: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.per_lease <= len(self.indices):
            raise NoDeviceError(f"a training needs {self.per_lease} {self.kind} device(s), the pool has "
                                f"{len(self.indices)} ({self.describe()})")

    @classmethod
    def for_settings(cls, orchestration: OrchestrationSettings, train_device: str = "auto",
                     gpu_count: int | None = None) -> LockFileDevicePool:
        """The pool of `orchestration` for trainings on `train_device` (`train.device`): GPUs when it is
        `auto` or `cuda` and this machine has any (`gpu_count`, default: what torch sees), a fixed GPU for
        `cuda:N`, CPU slots otherwise."""
        folder = Path(orchestration.lease_dir) if orchestration.lease_dir else default_lease_dir()
        count = torch.cuda.device_count() if gpu_count is None else gpu_count
        device = torch.device("cuda" if train_device == "auto" and count else
                              "cpu" if train_device == "auto" else train_device)
        if device.type == "cpu":
            return cls(folder, "cpu", tuple(range(orchestration.cpu_trainings)))
        if device.type != "cuda":
            raise NoDeviceError(f"train.device {train_device!r}: only `auto`, `cpu`, `cuda` or `cuda:N` "
                                "can be leased")
        if device.index is not None:
            return cls(folder, "cuda", (device.index,))
        devices = count if orchestration.devices == "auto" else orchestration.devices
        if not 1 <= devices <= count:
            raise NoDeviceError(f"orchestration.devices is {orchestration.devices}, but this machine has "
                                f"{count} GPU(s)")
        return cls(folder, "cuda", tuple(range(devices)), per_lease=orchestration.gpus_per_training)

    @property
    def concurrency(self) -> int:
        """How many trainings can hold a lease at once: the `gpu` pool's limit."""
        return len(self.indices) // self.per_lease

    def describe(self) -> str:
        slots = "CPU slot(s)" if self.kind == "cpu" else "GPU(s)"
        return f"{len(self.indices)} {slots}, lock files in {self.folder}"

    def _name(self, index: int) -> str:
        return "cpu" if self.kind == "cpu" else f"cuda:{index}"

    def _try_lock(self, index: int, stack: ExitStack) -> bool:
        lock = filelock.FileLock(self.folder / f"{self.kind}-{index}.lock", timeout=0, thread_local=False)
        try:
            lock.acquire()
        except filelock.Timeout:
            return False
        stack.callback(lock.release)
        return True

    def _try_lease(self) -> tuple[ExitStack, tuple[int, ...]] | None:
        """Lock the lowest free indices, or nothing when fewer than `per_lease` are free."""
        stack, taken = ExitStack(), []
        for index in self.indices:
            if self._try_lock(index, stack):
                taken.append(index)
                if len(taken) == self.per_lease:
                    return stack, tuple(taken)
        stack.close()
        return None

    @contextmanager
    def lease(self, wait_seconds: float = math.inf) -> Iterator[LockFileLease]:
        """Hold free devices for the block, waiting up to `wait_seconds` for them (then `NoDeviceError`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + wait_seconds
        while (held := self._try_lease()) is None:
            if time.monotonic() >= deadline:
                raise NoDeviceError(f"no free device after waiting {wait_seconds:g} s ({self.describe()}); "
                                    "every one is held by another training")
            time.sleep(self.poll_seconds)
        stack, indices = held
        with stack:
            yield LockFileLease(tuple(self._name(index) for index in indices))
