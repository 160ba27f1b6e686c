"""`geofm train --task T --model M`: train and test one model (once per seed), tracked in MLflow; each
seed's version becomes `best` if it is (DVC stage `train@T-M`; `M` = `<model>.<encoder>` of the encoder
scan: `train-encoder@T-<model>-<encoder>`). Under `torchrun --nproc-per-node N -m
pipelines train ...` the processes train it together with DistributedDataParallel (one run, one version).

A training whose every seed already finished identically is answered before torch or MLflow load
(`pipelines.orchestration.reuse`): about a second and 100 MB instead of half a minute and 1.4 GB."""

from __future__ import annotations

import argparse

from pipelines.orchestration.reuse import reused_training
from training.settings import Project
from training.tracking import Publication


def _line(args: argparse.Namespace, seed: int, scores: dict[str, object], published: Publication,
          reused: bool) -> str:
    return (f"{args.task}/{args.model} seed {seed}: test mIoU {scores['miou']:.4f}, mPA {scores['mpa']:.4f} "
            f"(majority baseline {scores['majority_baseline_miou']:.4f}); {published.model.uri} "
            f"{published.best_note}{'; reused the identical finished training' if reused else ''}; "
            f"{published.run_url}")


def _train(args: argparse.Namespace, project: Project) -> None:
    """The full stage: lease a device unless reused, train (or reuse) every seed, publish, summarize."""
    from contextlib import ExitStack  # the model stack and MLflow load only here (seconds, a GB)

    from pipelines.orchestration.devices import LockFileDevicePool
    from pipelines.tracking.store import BenchmarkStore
    from training.distributed.context import from_environment, shutdown
    from training.leases import lease_unless_reused
    from training.stages.training_stage import run_training_stage

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
        for seed in outcome.seeds if outcome is not None else ():
            print(_line(args, seed.result.seed, seed.result.summary(), seed.publication, seed.reused))
    finally:
        shutdown()


def run(args: argparse.Namespace, project: Project) -> None:
    reused = reused_training(project.settings, project.root, args.task, args.model)
    if reused is None:
        _train(args, project)
        return
    for seed in reused:
        print(_line(args, seed.seed, seed.scores, seed.publication, reused=True))
