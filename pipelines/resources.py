"""The Dagster resources of the benchmark: where the project lives, and where MLflow tracks it.

The assets reach these by resource key (`project`, `mlflow`), not by import, so `assets/` does not depend
on `pipelines/`. `MlflowResource` wraps `pipelines.store.BenchmarkStore`, which the CLI (the DVC stages)
uses directly, without loading Dagster.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from pipelines.store import BenchmarkStore
from pipelines.tracking import MlflowSettings, MlflowTracker
from training.config import load_params
from training.tracking import ModelRef


class ProjectResource(dg.ConfigurableResource):
    """The project folder, its parameters file and the profile to apply (empty: the file's own)."""

    root: str
    params_file: str = "params.yaml"
    profile: str = ""

    def params(self) -> dict[str, Any]:
        """The effective parameters: `params_file` with the profile's overlay."""
        return load_params(Path(self.root) / self.params_file, self.profile or None)


class MlflowResource(dg.ConfigurableResource):
    """The MLflow store: one parent run per benchmark configuration, a nested run per trained model."""

    tracking_uri: str
    artifact_root: str
    experiment: str
    best_alias: str = "best"

    @classmethod
    def for_project(cls, params: Mapping[str, Any], root: Path) -> MlflowResource:
        """The store `params["mlflow"]` names, its relative paths made absolute under `root`."""
        settings = MlflowSettings.from_params(params, root)
        return cls(tracking_uri=settings.tracking_uri, artifact_root=settings.artifact_root,
                   experiment=settings.experiment, best_alias=settings.best_alias)

    @property
    def settings(self) -> MlflowSettings:
        return MlflowSettings(self.tracking_uri, self.artifact_root, self.experiment, self.best_alias)

    @property
    def store(self) -> BenchmarkStore:
        return BenchmarkStore(self.settings)

    @contextmanager
    def training_run(self, params: Mapping[str, Any], task: str, model: str,
                     launcher: str) -> Iterator[MlflowTracker]:
        """A run for `task` x `model` under the benchmark's parent run, registering its model."""
        with self.store.training_run(params, task, model, launcher) as tracker:
            yield tracker

    def promote(self, model: ModelRef, val_miou: float) -> bool:
        """Move the best alias to this model version if its validation mIoU is the best so far."""
        return self.store.promote(model, val_miou)

    def log_report(self, params: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]) -> None:
        """Both benchmark tables on the benchmark's parent run."""
        self.store.log_report(params, tables)
