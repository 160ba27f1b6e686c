"""The Dagster code location: the benchmark assets, one job per stage, and the resources.

`dagster dev` (run from the repository root, with DAGSTER_HOME=.dagster_home) loads `defs` through
pyproject's `[tool.dagster]`. The project root is the current folder unless GEOFM_ROOT says otherwise, and
GEOFM_PROFILE picks a params.yaml profile (default: the file's `profile`). The settings are validated when
the definitions load, so a bad value stops the code location before any run starts.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from assets import build_benchmark_assets
from pipelines.orchestration.devices import LockFileDevicePool, NoDeviceError
from pipelines.orchestration.executors import build_executor
from pipelines.orchestration.reuse import reused_training
from pipelines.tracking.store import BenchmarkStore
from training.settings import Project
from training.settings.orchestration import OrchestrationSettings
from training.stages.catalog import STAGES


def build_definitions(project: Project, orchestration: OrchestrationSettings | None = None) -> dg.Definitions:
    """The definitions for the tasks and models of `project`'s settings (one job per stage of
    `training.stages.catalog`, in order: the benchmark jobs are the whole benchmark, which `geofm
    benchmark` runs over every partition and "Materialize all" launches), run by the executor of
    `orchestration` (default: the settings' own); each training leases its device from the machine's pool."""
    surveys = bool(project.settings.predict.surveys)
    jobs = [dg.define_asset_job(entry.name, selection=[entry.asset], description=entry.summary)
            for entry in STAGES if entry.benchmark or surveys]
    settings = project.settings
    orchestration = orchestration or settings.orchestration
    store = BenchmarkStore.for_project(settings.mlflow, project.root)
    # Built where a step runs (its own process, or its Kubernetes pod), so it counts that machine's GPUs.
    devices = dg.ResourceDefinition(
        lambda _: LockFileDevicePool.for_settings(orchestration, settings.train.device),
        description="the device pool a training leases its GPU(s) from")
    return dg.Definitions(
        assets=build_benchmark_assets(
            settings.tasks, settings.benchmark_models, list(settings.predict.surveys),
            trainings_at_once(orchestration, settings.train.device,
                              len(settings.tasks) * len(settings.benchmark_models))),
        jobs=jobs,
        resources={"project": project, "mlflow": store, "devices": devices, "reuse": reused_training},
        executor=build_executor(orchestration, profile=settings.profile, tracking_uri=store.tracking_uri,
                                train_device=settings.train.device),
    )


def trainings_at_once(orchestration: OrchestrationSettings, train_device: str, trainings: int) -> int:
    """How many runs a backfill of the trainings is split into: one per training on a cluster (each its
    own pod), else as many as this machine's device pool trains at once (one run on a single device)."""
    if orchestration.executor == "k8s":
        return trainings
    try:
        return LockFileDevicePool.for_settings(orchestration, train_device).concurrency
    except NoDeviceError:  # a step refuses it, naming the setting; loading the definitions must not
        return 1


def project_root() -> Path:
    """GEOFM_ROOT, or the current folder (where `dagster dev` and `dvc` run)."""
    return Path(os.environ.get("GEOFM_ROOT") or Path.cwd())


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` loads (built when loaded, so importing this module reads no file)."""
    return build_definitions(Project.load(project_root(), profile=os.environ.get("GEOFM_PROFILE")))
