"""A `training.tracking.Tracker` that keeps everything in memory, for the stage tests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from training.tracking import ModelRef


@dataclass
class RecordingTracker:
    """A tracker that keeps everything in memory: for tests and dry runs."""

    params: dict[str, Any] = field(default_factory=dict)
    metrics: list[tuple[int | None, dict[str, float]]] = field(default_factory=list)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    artifacts: list[Path] = field(default_factory=list)
    models: dict[str, nn.Module] = field(default_factory=dict)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.params.update(params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.metrics.append((step, dict(metrics)))

    def log_table(self, table: pd.DataFrame, name: str) -> None:
        self.tables[name] = table

    def log_artifact(self, path: Path) -> None:
        self.artifacts.append(Path(path))

    def log_model(self, model: nn.Module, name: str, input_example: np.ndarray) -> ModelRef:
        self.models[name] = model
        return ModelRef(uri=f"memory://{name}")

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.log_metrics(metrics, step=epoch)
