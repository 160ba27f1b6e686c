"""What the report asset needs from the experiment store, as a type (the training asset takes a
`training.tracking.TrainingStore`). `pipelines.definitions` passes a `pipelines.store.BenchmarkStore`
for both; tests may pass any object with these methods."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import pandas as pd

from training.settings import Settings


class ReportStore(Protocol):
    """Where the benchmark tables are logged."""

    def log_report(self, settings: Settings, tables: Mapping[str, pd.DataFrame]) -> None: ...
