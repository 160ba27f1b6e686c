"""Running the whole benchmark through Dagster from the command line: the stage jobs executed in order, one
run per stage over all its partitions (as a backfill of "Materialize all" runs them on a machine training
one at a time), in the persistent instance of `.dagster_home`, so that `dagster dev` shows the runs, checks
and metadata afterwards; each partition has its own materialization and check evaluations."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from tqdm import tqdm

from assets.partitions import MODEL, TASK
from pipelines.orchestration.devices import LockFileDevicePool
from pipelines.orchestration.dvc_record import record_in_dvc
from training.settings import Project, Settings
from training.stages.catalog import STAGES
from training.stages.outputs import dvc_stage_instance

DAGSTER_HOME = ".dagster_home"
LAUNCHER_TAG = "geofm/launcher"
PID_TAG = "geofm/pid"
HOST_TAG = "geofm/host"
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""The instance keeps every event for the UI; the terminal shows progress bars and warnings only."""
UNFINISHED = [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def dagster_instance(root: Path) -> dg.DagsterInstance:
    """The instance in DAGSTER_HOME, by default `<root>/.dagster_home` (its dagster.yaml is committed)."""
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(Path(root).resolve() / DAGSTER_HOME)))
    home.mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.get()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def release_stale_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs an earlier, killed `geofm` left unfinished on this host, freeing their pool
    slots (a killed in-process run keeps its `gpu` slot, and every later training would wait for it)."""
    stale = []
    for run in instance.get_runs(dg.RunsFilter(statuses=UNFINISHED, tags={LAUNCHER_TAG: "cli"})):
        if run.tags.get(HOST_TAG) == socket.gethostname() and not _process_alive(int(run.tags[PID_TAG])):
            instance.report_run_failed(run)
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            stale.append(run.run_id)
    return stale


@dataclass(frozen=True)
class PlannedRun:
    """One stage's run: its job, the partition keys it materializes, and the dvc.yaml stage instances
    doing the same work (committed to DVC after it)."""

    job: str
    partitions: list[str]
    dvc_stages: list[str]


def benchmark_plan(settings: Settings) -> list[PlannedRun]:
    """The runs in dependency order: each benchmark stage of `training.stages.catalog` over all its
    partitions (raw: none; prepare: every task; train: every task x model; report: none)."""
    pairs = [(task, model) for task in settings.tasks for model in settings.benchmark_models]
    by_options: dict[tuple[str, ...], tuple[list[str], list[dict[str, str]]]] = {
        (): ([], [{}]),
        (TASK,): (list(settings.tasks), [{"task": task} for task in settings.tasks]),
        (TASK, MODEL): ([str(dg.MultiPartitionKey({TASK: task, MODEL: model})) for task, model in pairs],
                        [{"task": task, "model": model} for task, model in pairs]),
    }
    plan = []
    for entry in STAGES:
        if entry.benchmark:
            keys, instances = by_options[entry.instance_options]
            plan.append(PlannedRun(entry.name, keys, [dvc_stage_instance(settings, entry.name, **instance)
                                                      for instance in instances]))
    return plan


def all_partitions_tags(job: dg.JobDefinition) -> dict[str, str]:
    """The run tags of a run of `job` over all its partitions (the range from Dagster's first key to its
    last); none when unpartitioned."""
    if job.partitions_def is None:
        return {}
    keys = job.partitions_def.get_partition_keys()
    return {ASSET_PARTITION_RANGE_START_TAG: keys[0], ASSET_PARTITION_RANGE_END_TAG: keys[-1]}


@dataclass
class BenchmarkRun:
    """What the main job did: Dagster run ids, and the asset checks that failed (`asset[partition]: check`),
    as errors or as warnings (a check whose failure is expected, e.g. with a random encoder)."""

    run_ids: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    warned_checks: list[str] = field(default_factory=list)


def run_benchmark(defs: dg.Definitions, instance: dg.DagsterInstance, project: Project,
                  show_progress: bool = True) -> BenchmarkRun:
    """Execute the stage jobs of `defs`, each once over all its partitions, and record each stage's outputs
    in DVC when the project is a DVC repository; stops at the first failed run."""
    tags = {LAUNCHER_TAG: "cli", PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}
    outcome = BenchmarkRun()
    plan = benchmark_plan(project.settings)
    with tqdm(plan, desc="benchmark", unit="run", disable=not show_progress) as bar:
        for planned in bar:
            keys = planned.partitions
            bar.set_postfix_str(f"{planned.job} ({len(keys)} partitions)" if keys else planned.job)
            job = defs.resolve_job_def(planned.job)
            result = job.execute_in_process(instance=instance, run_config=QUIET_CONSOLE,
                                            tags={**tags, **all_partitions_tags(job)})
            outcome.run_ids.append(result.run_id)
            record_in_dvc(project.root, planned.dvc_stages)
            for check in result.get_asset_check_evaluations():
                if not check.passed:
                    failures = (outcome.warned_checks if check.severity == dg.AssetCheckSeverity.WARN
                                else outcome.failed_checks)
                    failures.append(f"{check.asset_key.to_user_string()}[{check.partition}]: "
                                    f"{check.check_name}")
    return outcome


def set_pool_limit(instance: dg.DagsterInstance, pool: LockFileDevicePool, name: str = "gpu") -> int:
    """Let as many steps of Dagster's pool `name` (the trainings') run at once as `pool` holds trainings;
    returns that limit (`dagster instance concurrency set gpu N` does the same by hand)."""
    instance.event_log_storage.set_concurrency_slots(name, pool.concurrency)
    return pool.concurrency
