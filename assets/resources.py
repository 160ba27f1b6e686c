"""What the assets need from the outside world, as types: the project (root and settings) and the
experiment store. `pipelines.definitions` passes a `training.settings.Project` and a
`pipelines.store.BenchmarkStore`; tests may pass any object with these methods."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Protocol

import pandas as pd

from training.settings import Settings
from training.tracking import ModelRef, Tracker


class RunTracker(Tracker, Protocol):
    """A tracker of one run that can link to it."""

    @property
    def run_url(self) -> str: ...


class ExperimentStore(Protocol):
    """Runs, registry and report of the benchmark (`pipelines.store.BenchmarkStore`)."""

    def training_run(self, settings: Settings, task: str, model: str,
                     launcher: str) -> AbstractContextManager[RunTracker]: ...

    def promote(self, model: ModelRef, val_miou: float) -> bool: ...

    def log_report(self, settings: Settings, tables: Mapping[str, pd.DataFrame]) -> None: ...
