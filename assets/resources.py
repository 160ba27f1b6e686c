"""What the report and predictions assets need from the experiment store, as types (the training asset
takes a `training.tracking.TrainingStore`). `pipelines.definitions` passes a `pipelines.store.BenchmarkStore`
for all of them; tests may pass any object with these methods."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import pandas as pd
from torch import nn

from training.settings import Settings


class ReportStore(Protocol):
    """Where the benchmark tables are logged."""

    def log_report(self, settings: Settings, tables: Mapping[str, pd.DataFrame]) -> None: ...


class ModelSource(Protocol):
    """Where registered models are found and loaded."""

    def best_model_of_task(self, task: str, models: Sequence[str]) -> str: ...

    def load_model(self, reference: str) -> nn.Module: ...
