"""Dagster's executor from `orchestration` (no cluster needed): the definitions load with each executor, the
Kubernetes job of a training step requests its GPUs and runs the configured image, and the pods find the
project and the MLflow server where the settings say. A tiny training run records the device it leased; run
again, it is reused and leases none."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import dagster as dg
import pytest
from tiny_benchmark import REPO, write_tiny_params

from assets.training import trainings_backfill
from pipelines.orchestration.benchmark_runner import run_benchmark
from pipelines.orchestration.definitions import build_definitions, trainings_at_once
from pipelines.orchestration.executors import GPU_RESOURCE, TRAINING_STEP, ExecutorSettingsError
from pipelines.tracking.store import BenchmarkStore
from training.leases import REUSED
from training.settings import Project
from training.settings.orchestration import OrchestrationSettings
from training.stages.catalog import STAGES

warnings.filterwarnings("ignore", message="Found version mismatch between `dagster-shared`")

SERVER = "http://mlflow.geofm.svc:5000"
K8S = {"image": "registry.example/geofm:abc123", "project_volume_claim": "geofm-project",
       "project_mount_path": "/mnt/geofm", "namespace": "geofm", "service_account": "geofm-runner",
       "env": {"AWS_ENDPOINT_URL": "http://minio.geofm.svc:9000"}, "env_secrets": ["geofm-s3"]}


@pytest.fixture
def dagster_k8s():
    """dagster-k8s (the optional extra `k8s`), or the test is skipped."""
    return pytest.importorskip("dagster_k8s")


def _project(root: Path, tracking_uri: str | None = None) -> Project:
    write_tiny_params(root, ["salt"], ["unet"])
    project = Project.load(root)
    if tracking_uri is None:
        return project
    mlflow = project.settings.mlflow.model_copy(update={"tracking_uri": tracking_uri})
    return Project(project.root, project.settings.model_copy(update={"mlflow": mlflow}))


@pytest.mark.parametrize("executor", ["in_process", "multiprocess", "k8s"])
def test_the_definitions_load_with_each_executor(tmp_path: Path, executor: str) -> None:
    if executor == "k8s":
        pytest.importorskip("dagster_k8s")
    orchestration = OrchestrationSettings(executor=executor, k8s=K8S, cpu_trainings=3)
    defs = build_definitions(_project(tmp_path, SERVER), orchestration)
    for job in (entry.name for entry in STAGES if entry.benchmark):
        assert defs.resolve_job_def(job).executor_def.name == executor
    assert TRAINING_STEP in defs.resolve_job_def("train").graph.node_names()
    if executor == "multiprocess":  # as many steps at once as trainings fit on this machine's devices
        config = defs.resolve_job_def("train").executor_def.config_schema.resolve_config({}).value
        assert config["config"]["max_concurrent"] == 3


def _k8s_config(tmp_path: Path, **orchestration: object) -> dict:
    pytest.importorskip("dagster_k8s")
    settings = OrchestrationSettings(executor="k8s", k8s=K8S, **orchestration)
    executor = build_definitions(_project(tmp_path, SERVER), settings).resolve_job_def("train").executor_def
    resolved = executor.config_schema.resolve_config({})  # validated against dagster-k8s's schema
    assert resolved.success, resolved.errors
    return resolved.value["config"]


def _step_pod(dagster_k8s, config: dict, step: str) -> object:
    """The pod spec of `step`'s Kubernetes job, built by dagster-k8s from the executor config as its step
    handler does (the executor-wide container config, then the step's own)."""
    job_config = dagster_k8s.DagsterK8sJobConfig(
        job_image=config["job_image"], dagster_home="/opt/dagster/dagster_home",
        image_pull_policy=config["image_pull_policy"], service_account_name=config["service_account_name"],
        env_secrets=config["env_secrets"], env_vars=config["env_vars"], volume_mounts=config["volume_mounts"],
        volumes=config["volumes"], resources=config["resources"])
    step_config = dagster_k8s.job.UserDefinedDagsterK8sConfig.from_dict(
        config["per_step_k8s_config"].get(step, {}))
    job = dagster_k8s.construct_dagster_k8s_job(job_config, ["dagster", "api"], step, step_config)
    return job.spec.template.spec


def test_a_training_pod_requests_its_gpus_and_runs_the_configured_image(tmp_path: Path, dagster_k8s) -> None:
    config = _k8s_config(tmp_path, gpus_per_training=2)
    assert (config["job_image"], config["job_namespace"]) == (K8S["image"], "geofm")
    training = _step_pod(dagster_k8s, config, TRAINING_STEP)
    container = training.containers[0]
    assert container.image == K8S["image"] and training.service_account_name == "geofm-runner"
    assert container.resources.limits[GPU_RESOURCE] == container.resources.requests[GPU_RESOURCE] == "2"
    assert container.resources.requests["memory"] == "32Gi" and container.resources.limits["memory"] == "64Gi"
    other = _step_pod(dagster_k8s, config, "prepared_data").containers[0]
    assert other.image == K8S["image"] and GPU_RESOURCE not in (other.resources.limits or {})
    assert other.resources.requests == {"cpu": "1", "memory": "4Gi"}


def test_the_pods_find_the_project_and_tracking_server_the_settings_name(tmp_path: Path, dagster_k8s) -> None:
    pod = _step_pod(dagster_k8s, _k8s_config(tmp_path), TRAINING_STEP)
    container = pod.containers[0]
    env = {variable.name: variable.value for variable in container.env}
    assert env["GEOFM_ROOT"] == "/mnt/geofm" and env["GEOFM_PROFILE"] == "demo"
    assert env["MLFLOW_TRACKING_URI"] == SERVER and env["AWS_ENDPOINT_URL"] == K8S["env"]["AWS_ENDPOINT_URL"]
    assert [source.secret_ref.name for source in container.env_from] == ["geofm-s3"]
    claims = {volume.name: volume.persistent_volume_claim.claim_name for volume in pod.volumes}
    mounts = {mount.name: mount.mount_path for mount in container.volume_mounts}
    assert claims == {"geofm-project": "geofm-project"} and mounts["geofm-project"] == "/mnt/geofm"


def test_the_cluster_refuses_a_sqlite_tracking_store(tmp_path: Path) -> None:
    settings = OrchestrationSettings(executor="k8s", k8s=K8S)
    with pytest.raises(ExecutorSettingsError, match="mlflow.tracking_uri is 'sqlite:///.*tracking server"):
        build_definitions(_project(tmp_path), settings)


def test_k8s_needs_an_image_and_a_project_volume() -> None:
    with pytest.raises(ValueError, match="k8s.image is required with executor k8s"):
        OrchestrationSettings(executor="k8s")
    with pytest.raises(ValueError, match="k8s.project_volume_claim is required"):
        OrchestrationSettings(executor="k8s", k8s={"image": "geofm:1"})


@pytest.mark.usefixtures("single_torch_thread")
def test_a_training_records_the_device_it_leased_and_a_reused_one_leases_none(tmp_path: Path) -> None:
    project = _project(tmp_path)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / ".dagster_home" / "dagster.yaml", home)
    orchestration = OrchestrationSettings(lease_dir=str(tmp_path / "devices"))
    with dg.DagsterInstance.from_config(str(home)) as instance:
        definitions = build_definitions(project, orchestration)
        for _ in range(2):
            run_benchmark(definitions, instance, project, show_progress=False)
        records = instance.fetch_materializations(dg.AssetKey("trained_model"), limit=2).records
        latest, first = (record.event_log_entry.asset_materialization.metadata for record in records)
    assert first["device"].value == "cpu" and not first["reused_finished_training"].value
    assert latest["device"].value == REUSED and latest["reused_finished_training"].value
    store = BenchmarkStore.for_project(project.settings.mlflow, project.root)
    runs = store.client.search_runs([store.experiment_id()], "tags.`geofm.task` = 'salt'")
    assert [run.data.params["device"] for run in runs] == ["cpu"] * len(project.settings.train.seeds)


def _training_backfill(root: Path, orchestration: OrchestrationSettings) -> dg.BackfillPolicy:
    """The trained_model asset's backfill policy for 3 tasks x 3 models under `orchestration`."""
    write_tiny_params(root, ["salt", "das", "seam"], ["unet", "linear-lora", "pup-lora"])
    graph = build_definitions(Project.load(root), orchestration).resolve_asset_graph()
    return graph.get(dg.AssetKey(TRAINING_STEP)).backfill_policy


def test_a_backfill_of_the_trainings_runs_in_as_many_runs_as_train_at_once(tmp_path: Path) -> None:
    """One run on a machine that trains one at a time; each of four CPU slots gets a run of its share of
    the 9 trainings; a cluster, one run (one pod) per training. Preparation is always one run."""
    one = _training_backfill(tmp_path, OrchestrationSettings(cpu_trainings=1))
    assert one == dg.BackfillPolicy.single_run()
    four = _training_backfill(tmp_path, OrchestrationSettings(cpu_trainings=4))
    assert four == dg.BackfillPolicy.multi_run(max_partitions_per_run=3)
    cluster = trainings_at_once(OrchestrationSettings(executor="k8s", k8s=K8S), "auto", trainings=9)
    assert trainings_backfill(9, cluster) == dg.BackfillPolicy.multi_run(max_partitions_per_run=1)
    graph = build_definitions(Project.load(tmp_path)).resolve_asset_graph()
    assert graph.get(dg.AssetKey("prepared_data")).backfill_policy == dg.BackfillPolicy.single_run()
