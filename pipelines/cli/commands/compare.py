"""`geofm compare`: every score of the runs' metrics.json against a committed reference, within an absolute
tolerance; prints the table of the differences and fails beyond it. `--rerun` reproduces the benchmark with
`dvc repro` first; `--write-reference` records the runs' scores as the reference instead."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

from training.comparison import (
    DEFAULT_TOLERANCE,
    compare,
    difference_table,
    failures,
    read_reference,
    run_metrics,
    write_reference,
)
from training.errors import GeofmError, MissingInputError
from training.settings import Project

REFERENCE_DIR = "reference"


class MetricsDifferError(GeofmError):
    """Scores of the runs differ from the reference beyond the tolerance, or are missing."""


def reference_path(project: Project, given: str | None) -> Path:
    """The reference file: as given (relative to the root), else `reference/<profile>-metrics.json`."""
    return project.root / (given or f"{REFERENCE_DIR}/{project.settings.profile}-metrics.json")


def _reproduce(root: Path) -> None:
    dvc = shutil.which("dvc")
    if dvc is None:
        raise MissingInputError("--rerun runs `dvc repro`, and no `dvc` is on PATH: activate the virtual "
                                "environment")
    completed = subprocess.run([dvc, "repro"], cwd=root, check=False)
    if completed.returncode != 0:
        raise GeofmError(f"`dvc repro` failed with status {completed.returncode}; nothing was compared")


def run(args: argparse.Namespace, project: Project) -> None:
    settings = project.settings
    reference = reference_path(project, args.reference)
    if args.rerun:
        _reproduce(project.root)
    measured = run_metrics(settings, project.root)
    if args.write_reference:
        if not measured:
            raise MissingInputError(f"no metrics.json under {settings.outputs.runs_dir}/: run the benchmark "
                                    "first (`dvc repro`)")
        write_reference(reference, settings.profile, measured, note=args.note or "")
        print(f"wrote the scores of {len(measured)} runs (profile {settings.profile}) to {reference}")
        return
    tolerance = DEFAULT_TOLERANCE if args.tolerance is None else args.tolerance
    differences = compare(read_reference(reference, settings.profile), measured, tolerance)
    print(difference_table(differences))
    failed = failures(differences)
    print(f"{len(differences)} scores compared with {reference.name} (profile {settings.profile}): "
          f"{len(differences) - len(failed)} within {tolerance}, {len(failed)} beyond or missing")
    if failed:
        worst = ", ".join(f"{d.run} {d.metric} ({d.status})" for d in failed[:3])
        raise MetricsDifferError(f"{len(failed)} scores differ from {reference} beyond {tolerance} or are "
                                 f"missing: {worst}{', ...' if len(failed) > 3 else ''}")
