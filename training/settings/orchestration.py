"""Where and how many trainings run at once: Dagster's executor, the devices of one machine, a cluster.

Nothing here changes what a training computes (neither the checkpoint folder nor the MLflow parent run
depends on it): the same benchmark runs in one process, on every GPU of a machine, or as Kubernetes jobs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from training.settings.base import Section

Executor = Literal["in_process", "multiprocess", "k8s"]
PullPolicy = Literal["Always", "IfNotPresent", "Never"]
Quantities = dict[Literal["cpu", "memory", "ephemeral-storage"], str]


class KubernetesSettings(Section):
    """The Kubernetes jobs of `executor: k8s` (dagster-k8s `k8s_job_executor`), one per Dagster step."""

    image: str = Field("", description="image of the step pods (geofm installed, same commit as the code "
                                       "location); required with `executor: k8s`")
    image_pull_policy: PullPolicy = Field("IfNotPresent", description="pull policy of the step pods' image")
    namespace: str = Field("", description="namespace of the step jobs; empty: the run launcher's (the Helm "
                                           "release's)")
    service_account: str = Field("", description="service account of the step pods; empty: the run "
                                                 "launcher's")
    project_volume_claim: str = Field(
        "", description="PersistentVolumeClaim (ReadWriteMany) holding the project folder (params.yaml, "
                        "data, runs, reports, checkpoints), shared by every step pod; required with "
                        "`executor: k8s`")
    project_mount_path: str = Field("/geofm", min_length=1,
                                    description="where the step pods mount it; the project root (GEOFM_ROOT)")
    training_requests: Quantities = Field(
        default_factory=lambda: {"cpu": "8", "memory": "32Gi"},
        description="resource requests of a training pod (its GPUs come from `gpus_per_training`)")
    training_limits: Quantities = Field(default_factory=lambda: {"memory": "64Gi"},
                                        description="resource limits of a training pod")
    step_requests: Quantities = Field(
        default_factory=lambda: {"cpu": "1", "memory": "4Gi"},
        description="resource requests of the other steps (raw, prepare, report)")
    env: dict[str, str] = Field(default_factory=dict,
                                description="extra environment of every step pod (e.g. AWS_ENDPOINT_URL)")
    env_secrets: tuple[str, ...] = Field((), description="Secrets whose keys become environment variables of "
                                                         "every step pod (e.g. object-store credentials)")

    def missing(self) -> list[str]:
        """The keys `executor: k8s` needs that are empty."""
        return [key for key in ("image", "project_volume_claim") if not getattr(self, key)]


class OrchestrationSettings(Section):
    """How the benchmark's trainings are spread over processes, GPUs and machines."""

    executor: Executor = Field(
        "in_process", description="Dagster executor of every job: `in_process` (one process), `multiprocess` "
                                  "(each step its own process, one machine) or `k8s` (each step a Kubernetes "
                                  "job)")
    devices: int | str = Field(
        "auto", description="GPUs of this machine the trainings share, one training per GPU at a time "
                            "(the `gpu` pool's limit); `auto`: every GPU torch sees")
    cpu_trainings: int = Field(1, ge=1, description="trainings at once on a machine without GPU")
    gpus_per_training: int = Field(
        1, ge=1, description="GPUs (DDP processes under torchrun) of one training: the device lease's size "
                             "and the `nvidia.com/gpu` request of a training pod")
    lease_dir: str = Field("", description="folder of the device lock files, shared by every process of the "
                                           "machine; empty: `<temp dir>/geofm-devices`")
    k8s: KubernetesSettings = Field(default_factory=KubernetesSettings, description="")

    @field_validator("devices")
    @classmethod
    def _count_or_auto(cls, value: int | str) -> int | str:
        if value != "auto" and not (isinstance(value, int) and value >= 0):
            raise ValueError(f"expected a count >= 0 or 'auto', got {value!r}")
        return value

    @model_validator(mode="after")
    def _complete_for_executor(self) -> OrchestrationSettings:
        missing = self.k8s.missing() if self.executor == "k8s" else []
        if missing:
            raise ValueError(f"k8s.{missing[0]} is required with executor k8s")
        return self
