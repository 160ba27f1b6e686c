"""`geofm raw`: write or fetch the raw data, then validate every file (DVC stage `raw`)."""

from __future__ import annotations

import argparse

from training.settings import Project
from training.stages.raw import materialize_raw, validate_raw_data


def run(args: argparse.Namespace, project: Project) -> None:
    folder = materialize_raw(project.settings, project.root)
    summaries = validate_raw_data(project.settings, project.root)
    print(f"raw data in {folder}: " + ", ".join(f"{key} {s.counts}" for key, s in summaries.items()))
