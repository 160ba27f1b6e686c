"""The MLflow front door as a user reaches it from Dagster: the `mlflow_run` link of a trained model opens
that training's run in the model-training view (its metrics and its geofm source, not the GenAI view), and
the registry shows the `best` alias on every registered model, and a training run's Artifacts tab shows
its learning curves."""

from __future__ import annotations

import re
import time

import pytest

pytest.importorskip("selenium", reason="the browser suite drives Chromium with selenium (the dev extra)")

from dagster_pages import Backfill, open_page  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from pages import Browser  # noqa: E402

from pipelines.tracking.store import registered_model_name  # noqa: E402
from training.figures import HISTORY_FIGURE  # noqa: E402
from training.settings import Project  # noqa: E402

pytestmark = pytest.mark.browser
CLOSE_ASSISTANT = "//button[@data-component-id='mlflow.assistant.chat_panel.close']"
CLOSE_DIALOG = "//*[@role='dialog']//button[@aria-label='Close']"
MODEL_TRAINING = "Model training"
GENAI_ONLY = ("Evaluation runs", "Judges", "Sessions")
"""Side-bar entries of MLflow's GenAI view, absent from its model-training view."""


def _settle(browser: Browser) -> None:
    """Let the MLflow app render, then close its assistant panel and any promotion dialog."""
    browser.wait(lambda: browser.visible("//nav//a"), "the MLflow side bar")
    time.sleep(2)
    browser.dismiss(CLOSE_ASSISTANT)
    browser.dismiss(CLOSE_DIALOG)


def test_the_dagster_run_link_opens_the_training_run_with_its_metrics(
        browser: Browser, dagster_ui: str, mlflow_ui: str, materialized: Backfill, project) -> None:
    open_page(browser, f"{dagster_ui}/assets/trained_model")
    partition = browser.wait_for_text(r"Latest materialization\n.*\n(\S+\|\S+)",
                                      "the latest materialization's partition").group(1)
    link = browser.find(f"//a[starts-with(@href, '{mlflow_ui}/')]", "the mlflow_run link (on mlflow.ui_url)")
    url = link.get_attribute("href")
    run_id = re.search(r"/runs/(\w+)", url).group(1)
    run = MlflowClient(project.tracking_uri).get_run(run_id)
    assert f"{run.data.tags['geofm.model']}|{run.data.tags['geofm.task']}" == partition
    browser.open(url)
    _settle(browser)
    browser.wait_for_text(rf"test_miou\n{re.escape(str(run.data.metrics['test_miou']))}\n",
                          "the run's test mIoU among its metrics")
    source = run.data.tags["mlflow.source.name"]
    assert source.startswith("geofm train"), source
    browser.wait_for_text(rf"Source\n{re.escape(source)}\n", "the run's geofm source")
    browser.shot("09-mlflow-run-from-dagster")
    assert browser.visible("//nav//a[normalize-space()='Model registry']"), "not in the model-training view"
    shown = [entry for entry in GENAI_ONLY if browser.visible(f"//nav//*[normalize-space()='{entry}']")]
    assert not shown, f"the run opened in MLflow's GenAI view (side bar: {shown})"


def test_home_then_the_experiment_opens_its_runs_with_storage_cleared(
        browser: Browser, mlflow_ui: str, materialized: Backfill, project) -> None:
    settings = Project.load(project.root).settings
    browser.open(f"{mlflow_ui}/#/")
    browser.driver.execute_script("window.localStorage.clear(); window.sessionStorage.clear();")
    browser.driver.refresh()
    _settle(browser)
    browser.click(f"//a[normalize-space()='{settings.mlflow.experiment}']", "the experiment on MLflow's Home")
    browser.wait(lambda: "/runs" in browser.driver.current_url, "the experiment's Runs tab")
    client = MlflowClient(project.tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(settings.mlflow.experiment).experiment_id])
    parents = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    assert parents, "no benchmark (parent) run in the store"
    for run in parents:
        browser.find(f"//*[@role='row']//a[normalize-space()='{run.info.run_name}']",
                     f"benchmark run {run.info.run_name} in the runs table (trainings nest under it)")
    browser.shot("11-mlflow-home-to-runs")
    shown = [entry for entry in GENAI_ONLY if browser.visible(f"//nav//*[normalize-space()='{entry}']")]
    assert not shown, f"the experiment opened in MLflow's GenAI view (side bar: {shown})"


def test_the_registry_shows_best_on_every_model(browser: Browser, mlflow_ui: str, materialized: Backfill,
                                                project) -> None:
    settings = Project.load(project.root).settings
    client = MlflowClient(project.tracking_uri, registry_uri=project.tracking_uri)
    browser.open(f"{mlflow_ui}/#/models")
    _settle(browser)
    # The registry page drops the link's view; one click on the switch keeps "Model training" (the README).
    browser.click(f"//*[@role='button'][normalize-space()='{MODEL_TRAINING}']", "the view switch")
    browser.find("//nav//a[normalize-space()='Model registry']", "the model-training side bar")
    for task in settings.tasks:
        for model in settings.models:
            name = registered_model_name(task, model)
            best = client.get_model_version_by_alias(name, settings.mlflow.best_alias).version
            browser.find(f"//*[@role='row'][.//a[normalize-space()='{name}']]", f"the row of {name}")
            browser.wait_for_text(rf"{name}\nVersion \d+\n@ {settings.mlflow.best_alias}\n: Version {best}\n",
                                  f"{name}'s alias {settings.mlflow.best_alias} on version {best}")
    browser.shot("10-mlflow-registry")


def test_a_training_run_s_artifacts_show_its_learning_curves_at_the_root(
        browser: Browser, mlflow_ui: str, materialized: Backfill, project) -> None:
    """The figure `dvc plots show` draws is in the run's Artifacts tab, beside its files; no folder named
    `artifacts` (the run folder's name) wraps them."""
    settings = Project.load(project.root).settings
    client = MlflowClient(project.tracking_uri)
    experiment = client.get_experiment_by_name(settings.mlflow.experiment).experiment_id
    run = client.search_runs([experiment], "tags.`geofm.task` = 'das'", max_results=1)[0]
    logged = {artifact.path for artifact in client.list_artifacts(run.info.run_id)}
    assert HISTORY_FIGURE in logged and "artifacts" not in logged, logged
    browser.open(f"{mlflow_ui}/#/experiments/{experiment}/runs/{run.info.run_id}/artifacts"
                 "?workflowType=machine_learning")
    _settle(browser)
    browser.find(f"//*[normalize-space()='{HISTORY_FIGURE}']", f"{HISTORY_FIGURE} in the Artifacts tab")
    browser.shot("12-mlflow-run-artifacts")
    assert not browser.visible("//*[normalize-space()='artifacts']"), "a folder named artifacts is shown"
