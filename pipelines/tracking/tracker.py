"""`MlflowTracker`: the `training.tracking.Tracker` that logs one training into one MLflow run.

Models are logged pickled (not `pt2`, which fixes the section size), so the PyTorch flavour takes a raw
section of any size, beside a pyfunc flavour doing tiled survey prediction (`pipelines.tracking.serving`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from torch import nn

from pipelines.tracking import serving
from pipelines.tracking.attempts import discard_unregistered_models
from pipelines.tracking.locations import run_url
from pipelines.tracking.mlflow_io import flatten_params, log_frame, model_requirements
from training.tracking import ModelRef

LEARNING_RATE = "lr"
"""The epoch metric holding the learning rate (`training.fit`)."""


@dataclass
class MlflowTracker:
    """Logs into one MLflow run (the active one inside `BenchmarkStore.child_run`)."""

    client: MlflowClient
    run_id: str
    experiment_id: str
    ui_url: str
    registered_name: str | None = None
    _pending_rates: list[tuple[int, float]] = field(default_factory=list, init=False, repr=False)
    _rate_varies: bool = field(default=False, init=False, repr=False)

    @property
    def run_url(self) -> str:
        """A link to this run in the MLflow UI."""
        return run_url(self.ui_url, self.experiment_id, self.run_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = flatten_params(params)
        self.client.log_batch(self.run_id, params=[Param(key, value) for key, value in flat.items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        timestamp = int(time.time() * 1000)
        batch = [Metric(key, float(value), timestamp, step or 0) for key, value in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def log_table(self, table: pd.DataFrame, name: str) -> None:
        log_frame(self.client, self.run_id, table, f"tables/{name}")

    def log_artifact(self, path: Path) -> None:
        """A file at the run's artifact root; a folder's contents at the root (the Artifacts tab shows
        `prediction.png`, not a folder named after the local one)."""
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path))
        elif path.is_file():
            self.client.log_artifact(self.run_id, str(path))
        else:
            raise FileNotFoundError(f"artifact to log not found: {path}")

    def log_model(self, model: nn.Module, name: str) -> ModelRef:
        """Log `model` with its PyTorch flavour (any section size) and a tiled pyfunc flavour (served by
        `mlflow models serve`; see `pipelines.tracking.serving`), registered under `registered_name` if
        set. Models that killed attempts of this run left unregistered are removed first."""
        active = mlflow.active_run()
        if active is None or active.info.run_id != self.run_id:
            raise RuntimeError(f"log_model: run {self.run_id} is not the active MLflow run")
        discard_unregistered_models(self.client, self.run_id, self.experiment_id)
        info = serving.log_model(model, name, registered_model_name=self.registered_name,
                                 pip_requirements=model_requirements())
        if self.registered_name is None:
            return ModelRef(uri=info.model_uri)
        model_version = str(info.registered_model_version)
        return ModelRef(uri=f"models:/{self.registered_name}/{model_version}",
                        registered_name=self.registered_name, version=model_version)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        """The epoch's metrics; the learning rate only once it has changed (then from its first epoch on):
        a constant one is the param `fit.lr`, which MLflow shows as it is (its chart of a constant metric
        is a flat line at 0 on a -0.5..0.5 axis)."""
        metrics = dict(metrics)
        if LEARNING_RATE in metrics:
            self._pending_rates.append((epoch, metrics.pop(LEARNING_RATE)))
            self._rate_varies = self._rate_varies or len({rate for _, rate in self._pending_rates}) > 1
            if self._rate_varies:
                for step, rate in self._pending_rates:
                    self.log_metrics({LEARNING_RATE: rate}, step=step)
                self._pending_rates = []
        self.log_metrics(metrics, step=epoch)
