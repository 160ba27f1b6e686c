"""What the assets need from the outside world, as types: the experiment store (the training asset takes a
`training.tracking.TrainingStore`; `pipelines.orchestration.definitions` passes a
`pipelines.tracking.store.BenchmarkStore` for all of them) and the machine's devices
(`pipelines.orchestration.devices`). Tests may pass any object with these methods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

import pandas as pd
from torch import nn

from training.settings import Settings
from training.tracking import TrainingStore


class ReportStore(Protocol):
    """Where the benchmark tables are logged."""

    def log_report(self, settings: Settings, tables: Mapping[str, pd.DataFrame]) -> None: ...


class ModelSource(Protocol):
    """Where registered models are found and loaded."""

    def best_model_of_task(self, task: str, models: Sequence[str]) -> str: ...

    def load_model(self, reference: str) -> nn.Module: ...


class DeviceLease(Protocol):
    """The GPU(s) or CPU slot one training holds (`pipelines.orchestration.devices.DeviceLease`)."""

    @property
    def label(self) -> str: ...

    def recorded(self, store: TrainingStore) -> TrainingStore: ...

    def activate(self) -> AbstractContextManager[object]: ...


class DevicePool(Protocol):
    """The machine's devices, leased one training at a time each
    (`pipelines.orchestration.devices.DevicePool`)."""

    def lease(self) -> AbstractContextManager[DeviceLease]: ...
