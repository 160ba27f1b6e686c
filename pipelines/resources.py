"""The Dagster resources of the benchmark: where the project lives, and where MLflow tracks it.

The assets reach these by resource key (`project`, `mlflow`), not by import, so `assets/` does not depend
on `pipelines/`; the CLI uses the same classes directly for the DVC stages.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from pipelines.tracking import (
    MlflowSettings,
    MlflowTracker,
    benchmark_parent_run,
    child_run,
    log_benchmark_tables,
    promote_if_best,
    registered_model_name,
)
from training.benchmark import benchmark_id
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

    @contextmanager
    def training_run(self, params: Mapping[str, Any], task: str, model: str,
                     launcher: str) -> Iterator[MlflowTracker]:
        """A run for `task` x `model` under the benchmark's parent run, registering its model."""
        parent = benchmark_parent_run(self.settings, benchmark_id(params), params)
        tags = {"geofm.task": task, "geofm.model": model, "geofm.profile": params.get("profile"),
                "geofm.launcher": launcher}
        with child_run(self.settings, parent, f"{task}-{model}", registered_model_name(task, model),
                       tags) as tracker:
            yield tracker

    def promote(self, model: ModelRef, val_miou: float) -> bool:
        """Move the best alias to this model version if its validation mIoU is the best so far."""
        if model.registered_name is None or model.version is None:
            raise ValueError(f"model {model.uri} was not registered, so it cannot be promoted")
        return promote_if_best(self.settings, model.registered_name, model.version, val_miou)

    def log_report(self, params: Mapping[str, Any], tables: Mapping[str, pd.DataFrame]) -> None:
        """Both benchmark tables on the benchmark's parent run."""
        parent = benchmark_parent_run(self.settings, benchmark_id(params), params)
        log_benchmark_tables(self.settings, parent, tables)
