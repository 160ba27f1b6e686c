"""The benchmark's MLflow store: a parent run per benchmark configuration, a nested run per training,
promotion of the best version, the report tables. Plain Python, so the DVC stages (the CLI) use it without
loading Dagster; `pipelines.resources.MlflowResource` exposes the same to the assets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from pipelines.tracking import (
    MlflowSettings,
    MlflowTracker,
    benchmark_parent_run,
    child_run,
    load_model,
    log_benchmark_tables,
    promote_if_best,
    registered_model_name,
)
from training.benchmark import benchmark_id
from training.tracking import ModelRef


@dataclass(frozen=True)
class BenchmarkStore:
    """The MLflow store of `settings`, seen from the benchmark."""

    settings: MlflowSettings

    @classmethod
    def for_project(cls, params: Mapping[str, Any], root: Path) -> BenchmarkStore:
        """The store `params["mlflow"]` names, its relative paths made absolute under `root`."""
        return cls(MlflowSettings.from_params(params, root))

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

    def load_model(self, reference: str) -> nn.Module:
        """A logged model by name, `name@alias`, `name/version` or URI (`pipelines.tracking.model_uri`)."""
        return load_model(self.settings, reference)
