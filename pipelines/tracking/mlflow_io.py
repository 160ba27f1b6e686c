"""Small MLflow building blocks for the benchmark store: absolute store locations, clients, parameters,
tables, and the pinned requirements of a logged model."""

from __future__ import annotations

import json
import posixpath
import tempfile
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

from pipelines.tracking.locations import SQLITE_PREFIX

MODEL_PACKAGES = ("torch", "torchvision", "timm", "peft", "numpy", "segyio", "tqdm", "pillow")


def absolute_artifact_root(location: str, root: Path) -> str:
    """A relative artifact folder made an absolute `file://` URI under `root`; URIs stay as they are."""
    if "://" in location or location.startswith("file:"):
        return location
    path = Path(location)
    return (path if path.is_absolute() else Path(root).resolve() / path).as_uri()


def client_for(tracking_uri: str) -> MlflowClient:
    """A client on the store; also points the fluent API (runs, log_model) at it."""
    if tracking_uri.startswith(SQLITE_PREFIX):
        Path(tracking_uri[len(SQLITE_PREFIX):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


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


def _replace_table(client: MlflowClient, run_id: str, table: pd.DataFrame, artifact_file: str) -> None:
    """`log_table`, but replacing an earlier table of that name (MLflow would append rows to it)."""
    folder = posixpath.dirname(artifact_file) or None
    if any(item.path == artifact_file for item in client.list_artifacts(run_id, folder)):
        get_artifact_repository(client.get_run(run_id).info.artifact_uri).delete_artifacts(artifact_file)
    client.log_table(run_id, data=table, artifact_file=artifact_file)


def log_text(client: MlflowClient, run_id: str, text: str, artifact_file: str) -> None:
    """A text file logged from a private temporary folder, so no half-written file is ever visible."""
    with tempfile.TemporaryDirectory() as folder:
        local = Path(folder) / posixpath.basename(artifact_file)
        local.write_text(text)
        client.log_artifact(run_id, str(local), posixpath.dirname(artifact_file) or None)


def log_frame(client: MlflowClient, run_id: str, table: pd.DataFrame, stem: str) -> None:
    """A table as `<stem>.csv` and as an MLflow table `<stem>.json` (index kept as a column)."""
    plain_index = isinstance(table.index, pd.RangeIndex)
    log_text(client, run_id, table.to_csv(index=not plain_index), f"{stem}.csv")
    flat = table if plain_index else table.reset_index()
    _replace_table(client, run_id, flat.rename(columns=str), f"{stem}.json")


def model_requirements() -> list[str]:
    """Pinned requirements of a logged model, read from the installed packages (no slow inference)."""
    pins = []
    for package in MODEL_PACKAGES:
        try:
            pins.append(f"{package}=={version(package)}")
        except PackageNotFoundError:
            continue
    return pins


def model_uri(reference: str, best_alias: str) -> str:
    """An MLflow model URI from what a user types: `models:/...` and `runs:/...` as they are,
    `geofm-salt-mla-lora@best` or `geofm-salt-mla-lora/3` under `models:/`, a bare name at the best alias."""
    if reference.startswith(("models:/", "runs:/")):
        return reference
    if "@" in reference or "/" in reference:
        return f"models:/{reference}"
    return f"models:/{reference}@{best_alias}"
