"""MLflow tracking and model registry for the benchmark: one parent run per benchmark, a nested run per
task x network x mode, one registered model per task x network x mode with an alias on the best version.

`MlflowTracker` implements `training.tracking.Tracker`, so the stage functions log to MLflow without
importing it. Models are logged pickled (not `pt2`, which fixes the section size) with a signature whose
batch and spatial sizes are free, so a registered model predicts on a raw section of any size.
"""

from __future__ import annotations

import json
import math
import posixpath
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow import MlflowClient
from mlflow.entities import LifecycleStage, Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
from mlflow.types import Schema, TensorSpec
from torch import nn

from training.report import tables_markdown
from training.tracking import ModelRef

BENCHMARK_TAG = "geofm.benchmark_id"
VAL_MIOU_TAG = "geofm.val_miou"
DEFAULT_UI_URL = "http://127.0.0.1:5000"
MODEL_PACKAGES = ("torch", "torchvision", "timm", "peft", "numpy")
SQLITE_PREFIX = "sqlite:///"


@dataclass(frozen=True)
class MlflowSettings:
    """Where the tracking store, artifacts and experiment live, and which alias marks the best version."""

    tracking_uri: str
    artifact_root: str
    experiment: str
    best_alias: str = "best"
    ui_url: str = DEFAULT_UI_URL

    @classmethod
    def from_params(cls, params: Mapping[str, Any], root: Path) -> MlflowSettings:
        """Settings from `params["mlflow"]`, with a relative sqlite path and artifact root made absolute
        under `root` (a relative sqlite path would otherwise depend on the current directory)."""
        section = params.get("mlflow")
        if not isinstance(section, Mapping):
            raise KeyError("params: missing the 'mlflow' section (tracking_uri, artifact_root, experiment)")
        missing = [key for key in ("tracking_uri", "artifact_root", "experiment") if key not in section]
        if missing:
            raise KeyError(f"params: mlflow.{missing[0]} is missing")
        root = Path(root).resolve()
        return cls(
            tracking_uri=_absolute_sqlite_uri(str(section["tracking_uri"]), root),
            artifact_root=_absolute_artifact_root(str(section["artifact_root"]), root),
            experiment=str(section["experiment"]),
            best_alias=str(section.get("best_alias", "best")),
            ui_url=str(section.get("ui_url", DEFAULT_UI_URL)),
        )


def _absolute_sqlite_uri(uri: str, root: Path) -> str:
    if not uri.startswith(SQLITE_PREFIX):
        return uri
    path = Path(uri[len(SQLITE_PREFIX):])
    return f"{SQLITE_PREFIX}{path if path.is_absolute() else root / path}"


def _absolute_artifact_root(location: str, root: Path) -> str:
    if "://" in location or location.startswith("file:"):
        return location
    path = Path(location)
    return (path if path.is_absolute() else root / path).as_uri()


def registered_model_name(task: str, model_key: str) -> str:
    """The registry name of one task x model, e.g. `geofm-salt-mla-lora` (model_key: unet or net-mode)."""
    return f"geofm-{task}-{model_key}"


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested parameters as MLflow params: dotted keys, lists as JSON, everything else as str."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, f"{name}."))
        elif isinstance(value, (list, tuple, Mapping)):
            flat[name] = json.dumps(value, default=str)
        else:
            flat[name] = str(value)
    return flat


def _client(settings: MlflowSettings) -> MlflowClient:
    """A client on the configured store; also points the fluent API (runs, log_model) at it."""
    if settings.tracking_uri.startswith(SQLITE_PREFIX):
        Path(settings.tracking_uri[len(SQLITE_PREFIX):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    mlflow.set_registry_uri(settings.tracking_uri)
    return MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)


def _experiment_id(client: MlflowClient, settings: MlflowSettings) -> str:
    """The benchmark experiment's id, creating it with the configured artifact location if missing."""
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is None:
        try:
            return client.create_experiment(settings.experiment, artifact_location=settings.artifact_root)
        except MlflowException as error:
            if error.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
            experiment = client.get_experiment_by_name(settings.experiment)
    if experiment.lifecycle_stage == LifecycleStage.DELETED:
        raise RuntimeError(
            f"MLflow experiment {settings.experiment!r} is deleted: restore it "
            f"(`mlflow experiments restore`) or set another params.yaml mlflow.experiment"
        )
    return experiment.experiment_id


def benchmark_parent_run(settings: MlflowSettings, benchmark_id: str, params: Mapping[str, Any]) -> str:
    """The id of the parent run tagged with `benchmark_id`, created (with the flattened params) if new."""
    if "'" in benchmark_id or "`" in benchmark_id:
        raise ValueError(f"benchmark id {benchmark_id!r} must not contain quotes")
    client = _client(settings)
    experiment_id = _experiment_id(client, settings)
    existing = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{BENCHMARK_TAG}` = '{benchmark_id}'",
        order_by=["attributes.start_time ASC"],
        max_results=1,
    )
    if existing:
        return existing[0].info.run_id
    run = client.create_run(experiment_id, run_name=f"benchmark-{benchmark_id}",
                            tags={BENCHMARK_TAG: benchmark_id})
    params = [Param(key, value) for key, value in flatten_params(params).items()]
    client.log_batch(run.info.run_id, params=params)
    return run.info.run_id


def _run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def _replace_table(client: MlflowClient, run_id: str, table: pd.DataFrame, artifact_file: str) -> None:
    """`log_table`, but replacing an earlier table of that name (MLflow would append rows to it)."""
    folder = posixpath.dirname(artifact_file) or None
    if any(item.path == artifact_file for item in client.list_artifacts(run_id, folder)):
        get_artifact_repository(client.get_run(run_id).info.artifact_uri).delete_artifacts(artifact_file)
    client.log_table(run_id, data=table, artifact_file=artifact_file)


def _log_text(client: MlflowClient, run_id: str, text: str, artifact_file: str) -> None:
    """A text file logged from a private temporary folder, so no half-written file is ever visible."""
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / posixpath.basename(artifact_file)
        local.write_text(text)
        client.log_artifact(run_id, str(local), posixpath.dirname(artifact_file) or None)


def _log_frame(client: MlflowClient, run_id: str, table: pd.DataFrame, stem: str) -> None:
    """A table as `<stem>.csv` and as an MLflow table `<stem>.json` (index kept as a column)."""
    plain_index = isinstance(table.index, pd.RangeIndex)
    _log_text(client, run_id, table.to_csv(index=not plain_index), f"{stem}.csv")
    flat = table if plain_index else table.reset_index()
    _replace_table(client, run_id, flat.rename(columns=str), f"{stem}.json")


def _any_size_spec(array: np.ndarray) -> TensorSpec:
    """The tensor spec of `array` with its batch and two spatial sizes left free."""
    shape = (-1, *array.shape[1:-2], -1, -1) if array.ndim >= 3 else (-1, *array.shape[1:])
    return TensorSpec(array.dtype, shape)


def any_size_signature(model: nn.Module, input_example: np.ndarray) -> ModelSignature:
    """The model's signature from one forward pass on `input_example`, valid for any section size."""
    device = next(model.parameters(), torch.empty(0)).device
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        output = model(torch.as_tensor(input_example, device=device)).float().cpu().numpy()
    model.train(was_training)
    return ModelSignature(inputs=Schema([_any_size_spec(np.asarray(input_example))]),
                          outputs=Schema([_any_size_spec(output)]))


def model_requirements() -> list[str]:
    """Pinned requirements of a logged model, read from the installed packages (no slow inference)."""
    pins = []
    for package in MODEL_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pins


@dataclass
class MlflowTracker:
    """A `training.tracking.Tracker` logging into one MLflow run (the active one inside `child_run`)."""

    client: MlflowClient
    run_id: str
    experiment_id: str
    registered_name: str | None = None
    ui_url: str = DEFAULT_UI_URL

    @property
    def run_url(self) -> str:
        """A link to this run in the MLflow UI."""
        return _run_url(self.ui_url, self.experiment_id, self.run_id)

    def log_params(self, params: Mapping[str, Any]) -> None:
        flat = flatten_params(params)
        self.client.log_batch(self.run_id, params=[Param(key, value) for key, value in flat.items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        timestamp = int(time.time() * 1000)
        batch = [Metric(key, float(value), timestamp, step or 0) for key, value in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)

    def log_table(self, table: pd.DataFrame, name: str) -> None:
        _log_frame(self.client, self.run_id, table, f"tables/{name}")

    def log_artifact(self, path: Path) -> None:
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.run_id, str(path), path.name)
        elif path.is_file():
            self.client.log_artifact(self.run_id, str(path))
        else:
            raise FileNotFoundError(f"artifact to log not found: {path}")

    def log_model(self, model: nn.Module, name: str, input_example: np.ndarray) -> ModelRef:
        """Log `model` pickled with an any-size signature and register it under `registered_name`."""
        active = mlflow.active_run()
        if active is None or active.info.run_id != self.run_id:
            raise RuntimeError(f"log_model: run {self.run_id} is not the active MLflow run")
        info = mlflow.pytorch.log_model(
            model,
            name=name,
            serialization_format="pickle",
            signature=any_size_signature(model, input_example),
            pip_requirements=model_requirements(),
            registered_model_name=self.registered_name,
        )
        if self.registered_name is None:
            return ModelRef(uri=info.model_uri)
        model_version = str(info.registered_model_version)
        return ModelRef(uri=f"models:/{self.registered_name}/{model_version}",
                        registered_name=self.registered_name, version=model_version)

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        self.log_metrics(metrics, step=epoch)


@contextmanager
def child_run(
    settings: MlflowSettings,
    parent_run_id: str,
    run_name: str,
    registered_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
) -> Iterator[MlflowTracker]:
    """A run nested under `parent_run_id`, active for the block; it ends FAILED if the block raises."""
    client = _client(settings)
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, parent_run_id=parent_run_id,
                          tags={key: str(value) for key, value in (tags or {}).items()}) as run:
        yield MlflowTracker(client, run.info.run_id, experiment_id, registered_name, settings.ui_url)


def promote_if_best(
    settings: MlflowSettings, registered_name: str, version: str | int, val_miou: float
) -> bool:
    """Record `val_miou` on the version and move the best alias to it if it beats the aliased version."""
    if not math.isfinite(val_miou):
        raise ValueError(f"{registered_name} version {version}: validation mIoU is {val_miou}, not a number")
    client = _client(settings)
    version = str(version)
    client.set_model_version_tag(registered_name, version, VAL_MIOU_TAG, repr(float(val_miou)))
    current = client.get_registered_model(registered_name).aliases.get(settings.best_alias)
    if current is not None and str(current) != version:
        best = client.get_model_version(registered_name, str(current)).tags.get(VAL_MIOU_TAG)
        if best is not None and float(best) >= val_miou:
            return False
    client.set_registered_model_alias(registered_name, settings.best_alias, version)
    return True


def log_benchmark_tables(
    settings: MlflowSettings, parent_run_id: str, tables: Mapping[str, pd.DataFrame]
) -> None:
    """Both benchmark tables on the parent run (markdown beside the paper, csv, MLflow tables); ends it."""
    client = _client(settings)
    _log_text(client, parent_run_id, tables_markdown(tables), "report/benchmark.md")
    for key, table in tables.items():
        _log_frame(client, parent_run_id, table, f"report/{key}")
    client.set_terminated(parent_run_id, "FINISHED")


def model_uri(reference: str, best_alias: str) -> str:
    """An MLflow model URI from what a user types: `models:/...` and `runs:/...` as they are,
    `geofm-salt-mla-lora@best` or `geofm-salt-mla-lora/3` under `models:/`, a bare name at the best alias."""
    if reference.startswith(("models:/", "runs:/")):
        return reference
    if "@" in reference or "/" in reference:
        return f"models:/{reference}"
    return f"models:/{reference}@{best_alias}"


def load_model(settings: MlflowSettings, reference: str) -> nn.Module:
    """The model `reference` names (see `model_uri`) from the configured store, on the CPU; an unknown
    model is a ValueError naming it and the store."""
    _client(settings)
    uri = model_uri(reference, settings.best_alias)
    try:
        return mlflow.pytorch.load_model(uri, map_location="cpu")
    except MlflowException as error:
        raise ValueError(f"cannot load model {uri} from {settings.tracking_uri}: {error.message}") from error


def load_registered_model(
    settings: MlflowSettings, registered_name: str, alias: str | None = None
) -> nn.Module:
    """The registered model version under `alias` (default: the best alias), on the CPU."""
    return load_model(settings, f"{registered_name}@{alias or settings.best_alias}")
