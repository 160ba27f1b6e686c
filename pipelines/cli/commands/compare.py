"""`geofm compare`: every score of the runs' metrics.json against a committed reference, exactly when both
were made in strict mode on the CPU, else within the seeds' spread (`training.comparison`); prints why, the
differences largest first, and fails beyond them. `--rerun` reproduces the benchmark with `dvc repro` first;
`--write-reference` records the runs' scores as the reference instead, with how they were made."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from training.comparison import (
    compare,
    comparison_rule,
    difference_table,
    failures,
    provenance_warning,
    read_reference,
    run_metrics,
    write_reference,
)
from training.errors import GeofmError, MissingInputError
from training.reproducibility import provenance
from training.settings import Project, Settings

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


def _provenance(settings: Settings) -> dict[str, str]:
    """How this project's runs are made here: its reproducibility mode and device, this machine, versions."""
    return provenance(settings.train.reproducibility, settings.train.device)


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
        write_reference(reference, settings.profile, measured, note=args.note or "",
                        provenance=_provenance(settings))
        print(f"wrote the scores of {len(measured)} runs (profile {settings.profile}) to {reference}")
        return
    recorded = read_reference(reference, settings.profile)
    here = _provenance(settings)
    rule = comparison_rule(recorded.provenance, here, args.tolerance)
    warning = provenance_warning(recorded.provenance, here)
    if warning:
        print(warning, file=sys.stderr)
    print(f"compared {rule.reason}; largest differences first:")
    differences = compare(recorded.runs, measured, rule)
    print(difference_table(differences))
    failed = failures(differences)
    allowed = "equal" if rule.floor == 0 and not rule.spread else "within the allowed difference"
    print(f"{len(differences)} scores compared with {reference.name} (profile {settings.profile}): "
          f"{len(differences) - len(failed)} {allowed}, {len(failed)} beyond or missing")
    if failed:
        worst = ", ".join(f"{d.run} {d.metric} ({d.status})" for d in failed[:3])
        raise MetricsDifferError(f"{len(failed)} scores differ from {reference} beyond the allowed "
                                 f"difference or are missing: {worst}{', ...' if len(failed) > 3 else ''}")
