"""Dagster's executor for every job, chosen by `orchestration.executor`: in one process, one process per
step on this machine, or one Kubernetes job per step (dagster-k8s), where a training's pod requests its
GPUs (`nvidia.com/gpu`) and every pod mounts the shared project folder and reads the MLflow server's address
from the settings. Nothing cluster-specific lives here: it all comes from `orchestration.k8s`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dagster as dg

from pipelines.orchestration.devices import LockFileDevicePool
from training.errors import GeofmError
from training.lookup import lookup
from training.settings.orchestration import KubernetesSettings, OrchestrationSettings

TRAINING_STEP = "trained_model"
"""The op (asset) name of a training step: the one step that gets GPUs."""
GPU_RESOURCE = "nvidia.com/gpu"
PROJECT_VOLUME = "geofm-project"
ROOT_VARIABLE, PROFILE_VARIABLE = "GEOFM_ROOT", "GEOFM_PROFILE"
"""What the code location reads in a step pod (see `pipelines.orchestration.definitions`)."""


class ExecutorSettingsError(GeofmError, ValueError):
    """The settings cannot drive the executor they select."""


def k8s_executor_config(k8s: KubernetesSettings, *, gpus_per_training: int, profile: str,
                        tracking_uri: str, max_concurrent: int | None = None) -> dict[str, Any]:
    """The `k8s_job_executor` config: image, namespace, service account, the project volume and its
    environment for every step; GPUs and the training's requests and limits for the training step."""
    if tracking_uri.startswith("sqlite:"):
        raise ExecutorSettingsError(
            f"mlflow.tracking_uri is {tracking_uri!r}: the step pods of executor k8s write concurrently from "
            "several machines, which a sqlite file cannot take; set it to an MLflow tracking server "
            "(http://...)")
    gpus = {GPU_RESOURCE: str(gpus_per_training)}
    training_resources = {"requests": {**k8s.training_requests, **gpus},
                          "limits": {**k8s.training_limits, **gpus}}
    environment = {ROOT_VARIABLE: k8s.project_mount_path, PROFILE_VARIABLE: profile,
                   "MLFLOW_TRACKING_URI": tracking_uri, **k8s.env}
    config: dict[str, Any] = {
        "job_image": k8s.image,
        "image_pull_policy": k8s.image_pull_policy,
        "env_vars": [f"{key}={value}" for key, value in environment.items()],
        "env_secrets": list(k8s.env_secrets),
        "volumes": [{"name": PROJECT_VOLUME,
                     "persistent_volume_claim": {"claim_name": k8s.project_volume_claim}}],
        "volume_mounts": [{"name": PROJECT_VOLUME, "mount_path": k8s.project_mount_path}],
        "resources": {"requests": dict(k8s.step_requests)},
        "per_step_k8s_config": {TRAINING_STEP: {"container_config": {"resources": training_resources}}},
    }
    optional = {"job_namespace": k8s.namespace, "service_account_name": k8s.service_account,
                "max_concurrent": max_concurrent}
    return config | {key: value for key, value in optional.items() if value}


def _in_process(orchestration: OrchestrationSettings, **_: Any) -> dg.ExecutorDefinition:
    return dg.in_process_executor


def _multiprocess(orchestration: OrchestrationSettings, *, train_device: str,
                  **_: Any) -> dg.ExecutorDefinition:
    slots = LockFileDevicePool.for_settings(orchestration, train_device).concurrency
    return dg.multiprocess_executor.configured({"max_concurrent": slots}, name="multiprocess")


def _k8s(orchestration: OrchestrationSettings, *, profile: str, tracking_uri: str,
         **_: Any) -> dg.ExecutorDefinition:
    config = k8s_executor_config(orchestration.k8s, gpus_per_training=orchestration.gpus_per_training,
                                 profile=profile, tracking_uri=tracking_uri)
    from dagster_k8s import k8s_job_executor  # the optional extra `k8s`: imported only when selected

    return k8s_job_executor.configured(config, name="k8s")


EXECUTORS: dict[str, Callable[..., dg.ExecutorDefinition]] = {
    "in_process": _in_process, "multiprocess": _multiprocess, "k8s": _k8s}


def build_executor(orchestration: OrchestrationSettings, *, profile: str, tracking_uri: str,
                   train_device: str = "auto") -> dg.ExecutorDefinition:
    """The executor `orchestration.executor` names. The multiprocess executor runs as many steps at once as
    this machine's device pool holds trainings (`train_device`: the `train.device` setting)."""
    build = lookup("executor", orchestration.executor, EXECUTORS)
    return build(orchestration, profile=profile, tracking_uri=tracking_uri, train_device=train_device)
