"""`geofm train --task T --model M`: train and test one model, tracked in MLflow; its version becomes
`best` if it is (DVC stage `train@T-M`)."""

from __future__ import annotations

import argparse

from pipelines.store import BenchmarkStore
from training.settings import Project
from training.stages.train import train_and_evaluate


def run(args: argparse.Namespace, project: Project) -> None:
    store = BenchmarkStore.for_project(project.settings.mlflow, project.root)
    with store.training_run(project.settings, args.task, args.model, launcher="cli") as tracker:
        result = train_and_evaluate(project.settings, project.root, args.task, args.model, tracker)
        url = tracker.run_url
    promoted = store.promote(result.model_ref, result.best_val_miou)
    print(f"{args.task}/{args.model}: test mIoU {result.miou:.4f}, mPA {result.mpa:.4f} "
          f"(majority baseline {result.majority_baseline_miou:.4f}); {result.model_ref.uri}"
          f"{' promoted to best' if promoted else ''}; {url}")
