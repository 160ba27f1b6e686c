"""Fixtures of the browser suite (marker `browser`; `pytest -m "not browser"` leaves it out).

One tiny project for the whole session (1 task x 2 models, 28-pixel sections, 1 epoch) in a temporary git +
DVC repository holding a copy of the code, `dagster dev` (webserver and daemon) and `mlflow ui` on free
ports of 127.0.0.1 with a temporary DAGSTER_HOME, and Debian's headless Chromium (`make browser-deps`).
The benchmark is materialized once, from the UI, and every test then looks at it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from services import free_port, service
from tiny_benchmark import copy_project_files, write_tiny_params

TASKS = ("das",)
MODELS = ("unet", "linear-lora")
COPIED = ("training", "assets", "pipelines", "dvc.yaml", "pyproject.toml", ".gitignore", ".dvcignore",
          ".dagster_home/dagster.yaml")
CHROMIUM, CHROMEDRIVER = "chromium", "chromedriver"
START_TIMEOUT_S = 180
COMMAND_TIMEOUT_S = 420


@dataclass(frozen=True)
class BrowserProject:
    """The tiny project: its root, the environment its commands run in, the ports of its two UIs."""

    root: Path
    env: dict[str, str]
    dagster_port: int
    mlflow_port: int

    @property
    def dagster_url(self) -> str:
        return f"http://127.0.0.1:{self.dagster_port}"

    @property
    def mlflow_url(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root}/mlflow/mlflow.db"

    def run(self, *command: str, timeout_s: float = COMMAND_TIMEOUT_S) -> str:
        """Run `command` in the project (virtual environment first on PATH); its output, or a failure."""
        done = subprocess.run(list(command), cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout_s, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> BrowserProject:
    """The tiny project in a git + DVC repository; its MLflow links point at the port `mlflow ui` gets."""
    root = tmp_path_factory.mktemp("browser_project").resolve()
    copy_project_files(root, COPIED)
    mlflow_port = free_port()
    params_path = write_tiny_params(root, TASKS, MODELS)
    params = yaml.safe_load(params_path.read_text())
    params["mlflow"]["ui_url"] = f"http://127.0.0.1:{mlflow_port}"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(root), "GEOFM_ROOT": str(root), "DAGSTER_HOME": str(root / ".dagster_home"),
           "DVC_NO_ANALYTICS": "1", "OMP_NUM_THREADS": "1", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "GIT_AUTHOR_NAME": "geofm", "GIT_AUTHOR_EMAIL": "geofm@127.0.0.1",
           "GIT_COMMITTER_NAME": "geofm", "GIT_COMMITTER_EMAIL": "geofm@127.0.0.1"}
    built = BrowserProject(root, env, free_port(), mlflow_port)
    built.run("git", "init", "-q")
    built.run("dvc", "init", "-q")
    built.run("git", "add", "-A")
    built.run("git", "commit", "-q", "-m", "tiny benchmark")
    return built


@pytest.fixture(scope="session")
def dagster_ui(project: BrowserProject) -> Iterator[str]:
    """`dagster dev` (webserver, daemon, code server) on the project; its URL."""
    command = ["dagster", "dev", "-m", "pipelines.orchestration.definitions",
               "-h", "127.0.0.1", "-p", str(project.dagster_port)]
    with service(command, cwd=project.root, env=project.env, ready_url=f"{project.dagster_url}/server_info",
                 log=project.root / "dagster-dev.log", timeout_s=START_TIMEOUT_S):
        yield project.dagster_url


@pytest.fixture(scope="session")
def mlflow_ui(project: BrowserProject) -> Iterator[str]:
    """`mlflow ui` as the README starts it (geofm's app, one worker, no job runner) on the project's store;
    its URL."""
    command = ["mlflow", "ui", "--app-name", "geofm", "--backend-store-uri", project.tracking_uri,
               "--workers", "1", "-h", "127.0.0.1", "-p", str(project.mlflow_port)]
    with service(command, cwd=project.root, env=project.env, ready_url=f"{project.mlflow_url}/health",
                 log=project.root / "mlflow-ui.log", timeout_s=START_TIMEOUT_S):
        yield project.mlflow_url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Chromium that resolves no host but 127.0.0.1 (a page needing the internet shows it)."""
    missing = [name for name in (CHROMIUM, CHROMEDRIVER) if shutil.which(name) is None]
    if missing:
        pytest.fail(f"{' and '.join(missing)} not found: install them with `make browser-deps` (Debian "
                    "packages chromium and chromium-driver), or leave this suite out with -m 'not browser'")
    from pages import Browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which(CHROMEDRIVER)))
    try:
        yield Browser(driver)
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def materialized(browser: object, dagster_ui: str) -> object:
    """The whole benchmark materialized from the UI: "Materialize all", then the backfill it launches, as
    it ended (a `dagster_pages.Backfill`)."""
    from dagster_pages import materialize_all, wait_for_backfill

    return wait_for_backfill(dagster_ui, materialize_all(browser, dagster_ui))
