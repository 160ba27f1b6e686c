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
from pipelines.orchestration.devices import DevicePool
from pipelines.orchestration.executors import build_executor
from pipelines.tracking.store import BenchmarkStore
from training.settings import Project
from training.settings.orchestration import OrchestrationSettings

STAGE_JOBS = {
    "raw": ("raw_data", "The raw record, or the synthetic stand-in of the demo profile."),
    "prepare": ("prepared_data", "Prepared arrays and data card of each task (one run per task)."),
    "train": ("trained_model", "Train and test one model (one run per task x model)."),
    "report": ("benchmark_report", "The mIoU and mPA tables beside the paper's."),
}
"""Job name (the dvc.yaml stage) -> (asset, description). The four jobs, in order, are the whole benchmark:
`geofm benchmark` runs them over every partition; in the UI, "Materialize all" launches the same."""


def build_definitions(project: Project, orchestration: OrchestrationSettings | None = None) -> dg.Definitions:
    """The definitions for the tasks and models of `project`'s settings, run by the executor of
    `orchestration` (default: the settings' own); each training leases its device from the machine's pool."""
    jobs = [dg.define_asset_job(name, selection=[asset], description=description)
            for name, (asset, description) in STAGE_JOBS.items()]
    if project.settings.predict.surveys:
        jobs.append(dg.define_asset_job("predictions", selection=["predictions"],
                                        description="Each configured survey, segmented."))
    settings = project.settings
    orchestration = orchestration or settings.orchestration
    store = BenchmarkStore.for_project(settings.mlflow, project.root)
    # Built where a step runs (its own process, or its Kubernetes pod), so it counts that machine's GPUs.
    devices = dg.ResourceDefinition(lambda _: DevicePool.for_settings(orchestration, settings.train.device),
                                    description="the device pool a training leases its GPU(s) from")
    return dg.Definitions(
        assets=build_benchmark_assets(settings.tasks, settings.models, list(settings.predict.surveys)),
        jobs=jobs,
        resources={"project": project, "mlflow": store, "devices": devices},
        executor=build_executor(orchestration, profile=settings.profile, tracking_uri=store.tracking_uri,
                                train_device=settings.train.device),
    )


def project_root() -> Path:
    """GEOFM_ROOT, or the current folder (where `dagster dev` and `dvc` run)."""
    return Path(os.environ.get("GEOFM_ROOT") or Path.cwd())


@dg.definitions
def defs() -> dg.Definitions:
    """What `dagster dev` loads (built when loaded, so importing this module reads no file)."""
    return build_definitions(Project.load(project_root(), profile=os.environ.get("GEOFM_PROFILE")))
