"""The benchmark as Dagster assets, thin wrappers over the stage functions of `training.stages`.

raw_data -> prepared_data (per task) -> trained_model (per task x model) -> benchmark_report, and
trained_model -> predictions (per configured survey).

The assets are built for the tasks and models of the settings (`build_benchmark_assets`) and take two
typed resources, so this package never imports `pipelines` (imports point training <- assets <- pipelines):
`project` (a `training.settings.Project`: root and settings), `mlflow` (the store interfaces of
`training.tracking`; `pipelines.tracking.store.BenchmarkStore` in the definitions), `devices` (a
`training.leases.DevicePool`) and `reuse` (a `training.reused.ReusedTraining`). Each asset names the
DVC stage that does the same work (metadata `dvc_stage`), so tests can compare the two graphs.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from assets.data import build_prepared_data, raw_data
from assets.partitions import DVC_STAGE, model_partitions, task_partitions
from assets.predictions import build_predictions
from assets.report import build_benchmark_report
from assets.training import build_trained_model

__all__ = ["DVC_STAGE", "build_benchmark_assets"]


def build_benchmark_assets(tasks: Sequence[str], models: Sequence[str], surveys: Sequence[str] = (),
                           trainings_at_once: int = 1) -> list[dg.AssetsDefinition]:
    """The four benchmark assets, partitioned over `tasks` and `tasks` x `models`, and the predictions of
    the configured `surveys` (one partition each) when there are any. A backfill of the trainings runs in
    `trainings_at_once` runs (one when the machine trains one at a time)."""
    prepared_data = build_prepared_data(task_partitions(tasks))
    trained_model = build_trained_model(model_partitions(tasks, models), prepared_data, trainings_at_once)
    assets = [raw_data, prepared_data, trained_model, build_benchmark_report(trained_model)]
    return assets + ([build_predictions(list(surveys), trained_model)] if surveys else [])
