"""`geofm benchmark` (and `geofm demo`, the same on the demo profile): the whole benchmark through Dagster,
recorded in .dagster_home; prints the tables and the next steps at the end."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from pathlib import Path

import dagster as dg

from assets.training import GPU_POOL
from pipelines.orchestration.benchmark_runner import (
    dagster_instance,
    release_stale_runs,
    run_benchmark,
    set_pool_limit,
)
from pipelines.orchestration.definitions import build_definitions
from pipelines.orchestration.devices import LockFileDevicePool
from training.models.weights import random_encoder_notice
from training.settings import Project

PAPER_COMMAND = "geofm --profile paper benchmark"
LOG_FILE = "logs/benchmark.log"
NEXT_STEPS = """
Browse the results:
  Dagster UI : DAGSTER_HOME=$PWD/.dagster_home .venv/bin/dagster dev        (then http://127.0.0.1:3000)
  MLflow UI  : .venv/bin/mlflow ui --app-name geofm --backend-store-uri sqlite:///mlflow/mlflow.db   (then http://127.0.0.1:5000)
Segment a section of your own (.sgy/.segy, .npy, or .dat with --shape H W) with a registered model:
  .venv/bin/geofm predict --model geofm-salt-mla-lora --input line.sgy --output classes.npy
Run the paper's settings (Zenodo data, full sizes, 100 epochs; a GPU and days):
  {paper}      or      dvc exp run -S profile=paper
"""


FILE_LOGGERS = {"geofm": logging.INFO, "mlflow": logging.INFO, "alembic": logging.INFO,
                "huey": logging.WARNING, "sqlalchemy.engine": logging.WARNING, "py.warnings": logging.WARNING}
"""Loggers sent to the log file only (MLflow gives several their own terminal handler)."""


def _log_to_file(path: Path) -> None:
    """Library notices and warnings go to `path`, so the terminal shows the progress bar and tables."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.captureWarnings(True)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # also in the steps' processes
    for name, level in FILE_LOGGERS.items():
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False


def run(args: argparse.Namespace, project: Project) -> None:
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    settings = project.settings
    log_file = project.root / LOG_FILE
    _log_to_file(log_file)
    print(f"benchmark, profile {settings.profile}: {len(settings.tasks)} tasks x "
          f"{len(settings.benchmark_models)} models; Dagster instance {project.root / '.dagster_home'}; "
          f"log {LOG_FILE}")
    if settings.model.weights == "none":
        print(random_encoder_notice(settings.model.encoder))
    instance = dagster_instance(project.root)
    pool = LockFileDevicePool.for_settings(settings.orchestration, settings.train.device)
    set_pool_limit(instance, pool, GPU_POOL)
    for run_id in release_stale_runs(instance):
        print(f"marked run {run_id} failed: its process is gone")
    defs = build_definitions(project)
    outcome = run_benchmark(defs, instance, project)
    print((project.paths.reports_dir / "benchmark.md").read_text())
    if outcome.warned_checks:
        print(f"{len(outcome.warned_checks)} checks warn (expected with a randomly initialised encoder; "
              f"see {LOG_FILE} and the Dagster UI): {', '.join(outcome.warned_checks)}")
    for check in outcome.failed_checks:
        print(f"failed check: {check}", file=sys.stderr)
    print(NEXT_STEPS.format(paper=PAPER_COMMAND))
