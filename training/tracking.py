"""How training reports to the outside world, without knowing which tracker listens.

The stage functions take a `Tracker`; the orchestration layer passes an MLflow one
(`pipelines.mlflow_tracker.MlflowTracker`), tests pass a recording one (`tests/recording_tracker.py`). A tracker is
also a fit callback (`on_epoch_end`), so per-epoch metrics reach it from the training loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
from torch import nn


@dataclass(frozen=True)
class ModelRef:
    """Where a logged model can be loaded from again."""

    uri: str
    registered_name: str | None = None
    version: str | None = None


class Tracker(Protocol):
    """What a stage reports: parameters, metrics, tables, files and the trained model."""

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def log_table(self, table: pd.DataFrame, name: str) -> None: ...

    def log_artifact(self, path: Path) -> None: ...

    def log_model(self, model: nn.Module, name: str, input_example: np.ndarray) -> ModelRef: ...

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...
