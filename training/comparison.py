"""The benchmark's metrics against a committed reference: every score of every
`<runs_dir>/<task>/<model>/metrics.json`, within an absolute tolerance (`geofm compare`).

Prepared data is bit-identical on every machine, trainings are not: another CPU's kernels, or a GPU, round
sums differently and the small differences grow over the epochs. A reference therefore holds the scores of
one run of a profile, and a rerun elsewhere agrees with it within a tolerance (README "Reproducibility").
Every number of a run's metrics.json is compared, by a flat name (`per_seed[1234].miou`), except the ones
named in `NOT_COMPARED`; a score that is null (the std of one seed) must be null in both. The table names
each score's protocol (`protocol`): pooled, our headline, or the paper's.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.atomic import write_atomic
from training.errors import GeofmError
from training.settings import ProjectPaths, Settings
from training.stages.outputs import METRICS_FILE

DEFAULT_TOLERANCE = 0.02
"""Absolute, on scores in [0, 1] (mIoU, mPA, accuracies and their std over seeds)."""
NOT_COMPARED = frozenset({"seed", "seeds", "best_epoch", "step_seconds"})
"""Identifiers, the epoch picked (it moves with any score difference) and timings."""
REFERENCE_VERSION = 1

Metrics = dict[str, float | None]


class MetricsReferenceError(GeofmError, ValueError):
    """A reference file that cannot be read, or that belongs to another profile."""


@dataclass(frozen=True)
class Difference:
    """One compared score: `status` is `ok` (within tolerance), `beyond` (outside), `missing` (in the
    reference, not in the run) or `new` (in the run, not in the reference)."""

    run: str
    metric: str
    reference: float | None
    measured: float | None
    status: str

    @property
    def delta(self) -> float | None:
        if self.reference is None or self.measured is None:
            return None
        return self.measured - self.reference


def flatten(summary: Mapping[str, Any], prefix: str = "") -> Metrics:
    """The numbers (and nulls) of one metrics.json by flat name; per-seed entries named by their seed."""
    flat: Metrics = {}
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if key in NOT_COMPARED or isinstance(value, (str, bool)):
            continue
        if value is None or isinstance(value, (int, float)):
            flat[name] = None if value is None else float(value)
        elif isinstance(value, list) and all(isinstance(item, Mapping) and "seed" in item for item in value):
            for item in value:
                flat.update(flatten(item, prefix=f"{name}[{item['seed']}]."))
        elif isinstance(value, list):
            flat.update({f"{name}[{index}]": float(item) for index, item in enumerate(value)})
    return flat


def run_metrics(settings: Settings, root: Path) -> dict[str, Metrics]:
    """`task/model` -> its flat scores, for every configured task x model that has a metrics.json."""
    paths = ProjectPaths.of(settings, root)
    runs = {}
    for task in settings.tasks:
        for model in settings.models:
            path = paths.run_dir(task, model) / METRICS_FILE
            if path.is_file():
                runs[f"{task}/{model}"] = flatten(json.loads(path.read_text()))
    return runs


def _status(reference: float | None, measured: float | None, tolerance: float) -> str:
    if reference is None or measured is None:
        return "ok" if reference is None and measured is None else "beyond"
    return "ok" if math.isclose(measured, reference, rel_tol=0.0, abs_tol=tolerance) else "beyond"


def compare(reference: Mapping[str, Metrics], measured: Mapping[str, Metrics],
            tolerance: float = DEFAULT_TOLERANCE) -> list[Difference]:
    """Every score of the reference against the run's, and the run's scores the reference lacks."""
    if not tolerance >= 0:
        raise ValueError(f"the tolerance must be a number >= 0; got {tolerance}")
    differences = []
    for run in sorted(set(reference) | set(measured)):
        expected, actual = reference.get(run, {}), measured.get(run, {})
        for metric in sorted(set(expected) | set(actual)):
            if metric not in actual:
                status = "missing"
            elif metric not in expected:
                status = "new"
            else:
                status = _status(expected[metric], actual[metric], tolerance)
            differences.append(Difference(run, metric, expected.get(metric), actual.get(metric), status))
    return differences


def failures(differences: list[Difference]) -> list[Difference]:
    """The scores beyond tolerance or missing from the run (new ones are reported, not failures)."""
    return [d for d in differences if d.status in ("beyond", "missing")]


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


POOLED_SCORES = frozenset({"miou", "mpa", "overall_accuracy", "fwiou", "per_class_iou",
                           "majority_baseline_miou"})


def protocol(metric: str) -> str:
    """The protocol a flat score name was computed by: `pooled` (our headline), `paper` (the authors'
    per-batch means, the ones set beside the paper's numbers), or `-` (the selection score, curves)."""
    name = metric.rsplit(".", 1)[-1].split("[")[0].removesuffix("_std")
    if name.startswith("authors_"):
        return "paper"
    return "pooled" if name in POOLED_SCORES else "-"


def difference_table(differences: list[Difference]) -> str:
    """A markdown table of the scores that are not identical (every failure among them)."""
    rows = ["| run | metric | reference | measured | difference | status | protocol |",
            "|---|---|---:|---:|---:|---|---|"]
    for d in differences:
        if d.status == "ok" and d.delta in (None, 0.0):
            continue
        delta = "" if d.delta is None else f"{d.delta:+.4f}"
        rows.append(f"| {d.run} | {d.metric} | {_number(d.reference)} | {_number(d.measured)} | {delta} | "
                    f"{d.status} | {protocol(d.metric)} |")
    return "\n".join(rows)


def write_reference(path: Path, profile: str, runs: Mapping[str, Metrics], note: str) -> None:
    """Write `runs` as the reference of `profile` (JSON, keys sorted, so a diff shows what changed)."""
    document = {"version": REFERENCE_VERSION, "profile": profile, "note": note, "runs": runs}
    write_atomic(Path(path), json.dumps(document, indent=1, sort_keys=True) + "\n")


def read_reference(path: Path, profile: str) -> dict[str, Metrics]:
    """The runs of a reference file written for `profile`; another profile's is an error naming both."""
    path = Path(path)
    if not path.is_file():
        raise MetricsReferenceError(f"reference file not found: {path} (write one with `geofm compare "
                                    "--write-reference`)")
    try:
        document = json.loads(path.read_text())
        version, written_for, runs = document["version"], document["profile"], document["runs"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise MetricsReferenceError(f"{path}: not a geofm metrics reference ({error!r})") from None
    if version != REFERENCE_VERSION:
        raise MetricsReferenceError(f"{path}: reference version {version}; this geofm reads "
                                    f"{REFERENCE_VERSION}")
    if written_for != profile:
        raise MetricsReferenceError(f"{path} holds the metrics of profile {written_for!r}, the active "
                                    f"profile is {profile!r}: compare with --profile {written_for} or "
                                    "another reference")
    return runs
