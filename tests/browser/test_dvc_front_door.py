"""The DVC front door after Dagster: `dvc repro` reuses the trainings Dagster finished (no second MLflow run
or model version) and then has nothing to do, and `dvc plots show` draws the learning curves with no
network (the browser resolves no host but 127.0.0.1)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("selenium", reason="the browser suite drives Chromium with selenium (the dev extra)")

from dagster_pages import Backfill  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from pages import Browser  # noqa: E402

from training.settings import Project  # noqa: E402

pytestmark = pytest.mark.browser
PLOT_WAIT_S = 30
EXTERNAL_RESOURCES = """return [...document.querySelectorAll('script[src], link[href], img[src], iframe')]
    .map(element => element.src || element.href).filter(url => !url.startsWith('file:'));"""
DRAWN_PLOTS = """return [...document.images].filter(image => image.complete && image.naturalWidth > 0).length
    + [...document.querySelectorAll('canvas, svg.marks')]
        .filter(element => element.getBoundingClientRect().width > 0).length;"""


def _logged(project) -> tuple[set[str], set[tuple[str, str]]]:
    """The ids of every run in the benchmark experiment and every (model, version) in the registry."""
    settings = Project.load(project.root).settings
    client = MlflowClient(project.tracking_uri, registry_uri=project.tracking_uri)
    experiment = client.get_experiment_by_name(settings.mlflow.experiment)
    runs = {run.info.run_id for run in client.search_runs([experiment.experiment_id])}
    return runs, {(version.name, version.version) for version in client.search_model_versions()}


def test_dvc_repro_after_dagster_reuses_the_trainings_then_has_nothing_to_do(materialized: Backfill,
                                                                             project) -> None:
    runs, versions = _logged(project)
    first = project.run("dvc", "repro")
    ran = re.findall(r"Running stage '([^']+)'", first)
    print(f"dvc repro after Dagster's 'Materialize all' ran {len(ran)} stages: {', '.join(ran)}")
    after_runs, after_versions = _logged(project)
    assert after_runs == runs, f"dvc repro ({ran}) logged new MLflow runs: {after_runs - runs}"
    assert after_versions == versions, f"dvc repro ({ran}) registered {after_versions - versions}"
    second = project.run("dvc", "repro")
    assert "Running stage" not in second, second


def test_dvc_plots_show_draws_the_curves_offline(browser: Browser, materialized: Backfill, project) -> None:
    output = project.root / "dvc_plots"
    project.run("dvc", "plots", "show", "--out", str(output))
    browser.open((output / "index.html").as_uri())
    external = browser.driver.execute_script(EXTERNAL_RESOURCES)
    assert not external, f"the plots page loads {external}, which a machine offline cannot reach"
    browser.wait(lambda: browser.driver.execute_script(DRAWN_PLOTS), "a plot drawn", PLOT_WAIT_S)
    browser.shot("11-dvc-plots")
