"""`geofm train --task T --model M`: train and test one model (once per seed), tracked in MLflow; each
seed's version becomes `best` if it is (DVC stage `train@T-M`)."""

from __future__ import annotations

import argparse

from pipelines.devices import DevicePool
from pipelines.store import BenchmarkStore
from training.settings import Project
from training.stages.training_stage import run_training_stage


def run(args: argparse.Namespace, project: Project) -> None:
    settings = project.settings
    store = BenchmarkStore.for_project(settings.mlflow, project.root)
    pool = DevicePool.for_settings(settings.orchestration, settings.train.device)
    with pool.lease() as lease, lease.activate():
        outcome = run_training_stage(settings, project.root, args.task, args.model, lease.recorded(store),
                                     launcher="cli")
    for seed in outcome.seeds:
        result, published = seed.result, seed.publication
        print(f"{args.task}/{args.model} seed {result.seed}: test mIoU {result.miou:.4f}, "
              f"mPA {result.mpa:.4f} "
              f"(majority baseline {result.majority_baseline_miou:.4f}); {published.model.uri}"
              f"{' promoted to best' if published.promoted else ''}"
              f"{'; reused the identical finished training' if seed.reused else ''}; {published.run_url}")
