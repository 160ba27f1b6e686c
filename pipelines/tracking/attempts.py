"""What a killed attempt of a training run leaves in the store, removed before the next attempt logs its
model: logged models of the run that no model version uses (PENDING ones whose upload a kill cut short, or
READY ones logged just before a kill), with their artifacts, so the run ends holding the one model that
its finished attempt logged, as if the killed attempts had never run."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion


def _local_folder(artifact_location: str) -> Path | None:
    """The folder on this machine holding a logged model (`.../models/<id>`), or None for a remote store."""
    parsed = urlparse(artifact_location)
    if parsed.scheme not in ("", "file"):
        return None
    artifacts = Path(unquote(parsed.path))
    return artifacts.parent if artifacts.name == "artifacts" else artifacts


def _model_id(version: ModelVersion) -> str | None:
    """The logged model a version was registered from (its `model_id`, or the id its `models:/` source
    names: `mlflow.register_model` leaves `model_id` empty)."""
    if version.model_id:
        return version.model_id
    source = version.source or ""
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def discard_unregistered_models(client: MlflowClient, run_id: str, experiment_id: str) -> list[str]:
    """Delete the logged models of `run_id` that no model version uses, and their local artifacts; their
    ids. A remote artifact store keeps the files (MLflow's garbage collection removes them)."""
    used = {_model_id(version) for version in client.search_model_versions(f"run_id = '{run_id}'")}
    discarded = []
    for logged in client.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'"):
        if logged.model_id in used:
            continue
        client.delete_logged_model(logged.model_id)
        folder = _local_folder(logged.artifact_location)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        discarded.append(logged.model_id)
    return discarded
