"""A `training.tracking.Tracker` and a `TrainingStore` that keep everything in memory, for the stage tests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from training.settings import Settings
from training.tracking import ModelRef, Publication


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

    def log_model(self, model: nn.Module, name: str) -> ModelRef:
        self.models[name] = model
        return ModelRef(uri=f"memory://{name}")

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.log_metrics(metrics, step=epoch)


@dataclass
class RecordingRun(RecordingTracker):
    """A recording tracker that is also a stored run."""

    run_id: str = ""
    status: str = "RUNNING"

    @property
    def run_url(self) -> str:
        return f"memory://runs/{self.run_id}"


@dataclass
class RecordingStore:
    """A `training.tracking.TrainingStore` in memory: runs by training id, one version per published run."""

    runs: dict[str, RecordingRun] = field(default_factory=dict)
    versions: dict[str, Publication] = field(default_factory=dict)

    @contextmanager
    def training_run(self, settings: Settings, task: str, model: str, launcher: str, training_id: str,
                     seed: int) -> Iterator[RecordingRun]:
        run = self.runs.get(training_id)
        if run is None or run.status == "FINISHED":
            run = RecordingRun(run_id=f"{training_id}-{len(self.runs)}")
            self.runs[training_id] = run
        run.status = "RUNNING"
        try:
            yield run
        except BaseException:
            run.status = "FAILED"
            raise
        run.status = "FINISHED"

    def finished_run(self, training_id: str) -> str | None:
        run = self.runs.get(training_id)
        return run.run_id if run is not None and run.status == "FINISHED" else None

    def publish(self, run_id: str, logged_model_uri: str, task: str, model: str,
                val_miou: float) -> Publication:
        if run_id not in self.versions:
            name, version = f"geofm-{task}-{model}", str(len(self.versions) + 1)
            reference = ModelRef(f"models:/{name}/{version}", name, version)
            self.versions[run_id] = Publication(reference, promoted=False, run_url=f"memory://runs/{run_id}")
        return self.versions[run_id]

