"""`geofm report`: both tables from the runs' metrics.json, logged to MLflow and printed (DVC stage
`report`)."""

from __future__ import annotations

import argparse
import sys

from pipelines.tracking.store import BenchmarkStore
from training.settings import Project
from training.stages.report import build_report


def run(args: argparse.Namespace, project: Project) -> None:
    report = build_report(project.settings, project.root)
    store = BenchmarkStore.for_project(project.settings.mlflow, project.root)
    store.log_report(project.settings, report.tables, report.scale)
    print(report.markdown)
    if report.missing:
        print(f"not trained yet: {', '.join(report.missing)}", file=sys.stderr)
