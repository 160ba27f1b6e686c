"""`mlflow ui --app-name geofm`: MLflow's own server, whose page opens experiments on the model-training view.

MLflow 3.17's UI picks its view from the URL (`?workflowType=`) or, failing that, from the browser's local
storage (`mlflow.workflowType_v1`), GenAI when neither says: the experiment's `mlflow.experimentKind` tag
is not read for it. So clicking the experiment from Home or the Experiments list opened the GenAI overview.
This app serves MLflow's page with one script that stores the model-training view when the browser has
stored no choice (a choice made with the side bar's switch is kept).
"""

from __future__ import annotations

import json
from pathlib import Path

from flask import Response
from mlflow.server import app as flask_app
from mlflow.server.fastapi_app import app

WORKFLOW_STORAGE_KEY = "mlflow.workflowType_v1"
MODEL_TRAINING_VIEW = "machine_learning"
DEFAULT_VIEW_SCRIPT = (f"<script>try{{localStorage.getItem({json.dumps(WORKFLOW_STORAGE_KEY)})===null&&"
                       f"localStorage.setItem({json.dumps(WORKFLOW_STORAGE_KEY)},"
                       f"{json.dumps(json.dumps(MODEL_TRAINING_VIEW))})}}catch(e){{}}</script>")
"""Runs before MLflow's bundle: the model-training view unless the browser stored a choice."""


def index_page(index_html: str) -> str:
    """MLflow's `index.html` with the default-view script first in its head."""
    if "<head>" not in index_html:
        raise ValueError("MLflow's index.html has no <head>: cannot set the UI's default view")
    return index_html.replace("<head>", f"<head>{DEFAULT_VIEW_SCRIPT}", 1)


def _serve() -> Response:
    page = Path(flask_app.static_folder) / "index.html"
    return Response(index_page(page.read_text(encoding="utf-8")), mimetype="text/html")


flask_app.view_functions["serve"] = _serve

__all__ = ["app"]
