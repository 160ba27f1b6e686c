"""`geofm train --task T --model M`: train and test one model (once per seed), tracked in MLflow; each
seed's version becomes `best` if it is (DVC stage `train@T-M`). Under `torchrun --nproc-per-node N -m
pipelines train ...` the processes train it together with DistributedDataParallel (one run, one version)."""

from __future__ import annotations

import argparse
from contextlib import ExitStack

from pipelines.orchestration.devices import LockFileDevicePool
from pipelines.tracking.store import BenchmarkStore
from training.distributed.context import from_environment, shutdown
from training.leases import lease_unless_reused
from training.settings import Project
from training.stages.training_stage import TrainingOutcome, run_training_stage


def _report(args: argparse.Namespace, outcome: TrainingOutcome) -> None:
    for seed in outcome.seeds:
        result, published = seed.result, seed.publication
        print(f"{args.task}/{args.model} seed {result.seed}: test mIoU {result.miou:.4f}, "
              f"mPA {result.mpa:.4f} (majority baseline {result.majority_baseline_miou:.4f}); "
              f"{published.model.uri}{' promoted to best' if published.promoted else ''}"
              f"{'; reused the identical finished training' if seed.reused else ''}; {published.run_url}")


def run(args: argparse.Namespace, project: Project) -> None:
    settings = project.settings
    store = BenchmarkStore.for_project(settings.mlflow, project.root)
    distributed = from_environment()
    try:
        with ExitStack() as stack:
            single = distributed.world_size == 1  # torchrun's processes have their GPUs: LOCAL_RANK's
            if single:
                pool = LockFileDevicePool.for_settings(settings.orchestration, settings.train.device)
                store, _ = lease_unless_reused(stack, pool, settings, project.root, args.task, args.model,
                                               store)
            outcome = run_training_stage(settings, project.root, args.task, args.model, store, launcher="cli",
                                         distributed=distributed)
        if outcome is not None:
            _report(args, outcome)
    finally:
        shutdown()
