"""Where the MLflow store is and how its UI links a run: plain strings, no MLflow import, so a front door
can read the store's sqlite file before it loads MLflow (see `pipelines.tracking.finished_lookup`)."""

from __future__ import annotations

from pathlib import Path

SQLITE_PREFIX = "sqlite:///"


def absolute_tracking_uri(uri: str, root: Path) -> str:
    """A relative `sqlite:///` path made absolute under `root` (else it would follow the current folder)."""
    if not uri.startswith(SQLITE_PREFIX):
        return uri
    path = Path(uri[len(SQLITE_PREFIX):])
    return f"{SQLITE_PREFIX}{path if path.is_absolute() else Path(root).resolve() / path}"


def sqlite_file(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` store; None for any other store."""
    return Path(tracking_uri[len(SQLITE_PREFIX):]) if tracking_uri.startswith(SQLITE_PREFIX) else None


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """A link to one run in the MLflow UI."""
    # MLflow 3's UI picks its view from the URL (else the browser's choice, GenAI by default).
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def registered_model_name(task: str, model_key: str) -> str:
    """The registry name of one task x model, e.g. `geofm-salt-mla-lora` (model_key: unet or net-mode)."""
    return f"geofm-{task}-{model_key}"
