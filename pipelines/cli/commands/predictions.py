"""`geofm predictions --survey NAME`: the `predictions` stage (DVC `predictions@NAME`): survey NAME of
params.yaml's `predict.surveys` segmented by the best registered model of its task."""

from __future__ import annotations

import argparse

from pipelines.cli.commands.predict import describe
from pipelines.tracking.store import BenchmarkStore
from training.settings import Project
from training.stages.predictions import predict_configured_survey


def run(args: argparse.Namespace, project: Project) -> None:
    settings = project.settings
    store = BenchmarkStore.for_project(settings.mlflow, project.root)
    result = predict_configured_survey(settings, project.root, args.survey, store.load_model,
                                       lambda task: store.best_model_of_task(task, settings.benchmark_models),
                                       store.model_provenance)
    print(describe(result))
