"""The benchmark's metrics against a committed reference: every score of every
`<runs_dir>/<task>/<model>/metrics.json`, within an absolute tolerance (`geofm compare`).

Prepared data is bit-identical on every machine; trainings are too in strict reproducibility on x86-64 CPUs
with AVX2 (`training.reproducibility`), otherwise another CPU's kernels, or a GPU, round sums differently and
the small differences grow over the epochs. A reference holds the scores of one run of a profile and how
they were made (`provenance`): a reference made in strict mode on the CPU is compared exactly with runs
made the same way, any other within max(floor, `SPREAD_FACTOR` x the seeds' std recorded with the score)
(docs/reproduce.md).
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
"""The floor of the tolerance, absolute, on scores in [0, 1] (mIoU, mPA, accuracies and their std over
seeds). A floor, not a measurement: fast-mode demo trainings on another CPU differed by up to 0.09 mIoU."""
SPREAD_FACTOR = 3.0
"""Two trainings whose scores spread with std s differ by s * sqrt(2) typically; 3 s covers ~97 % of them."""
PROVENANCE_KEYS = ("mode", "device", "machine", "torch", "mkl", "onednn", "numpy")
"""What makes scores differ when it differs between the reference and the runs (the warning names it)."""
NOT_COMPARED = frozenset({"seed", "seeds", "best_epoch", "step_seconds"})
"""Identifiers, the epoch picked (it moves with any score difference) and timings."""
REFERENCE_VERSION = 2
"""Version 2 adds `provenance`; a version 1 file reads as made in an unknown way (compared by tolerance)."""

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
    tolerance: float = DEFAULT_TOLERANCE

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
        for model in settings.benchmark_models:
            path = paths.run_dir(task, model) / METRICS_FILE
            if path.is_file():
                runs[f"{task}/{model}"] = flatten(json.loads(path.read_text()))
    return runs


@dataclass(frozen=True)
class Reference:
    """A reference file's scores (`task/model` -> flat scores) and how they were made (None: unknown)."""

    runs: dict[str, Metrics]
    provenance: dict[str, str] | None


@dataclass(frozen=True)
class Rule:
    """How the scores are compared: within `floor`, widened to `SPREAD_FACTOR` x a score's std over seeds
    when `spread`; `reason` says why, for the user."""

    floor: float
    spread: bool
    reason: str

    def tolerance(self, expected: Metrics, metric: str) -> float:
        """The tolerance of `metric` (`per_seed[s].miou` uses `miou_std`) given the reference's run."""
        std = expected.get(f"{metric.rsplit('.', 1)[-1]}_std") if self.spread else None
        return max(self.floor, SPREAD_FACTOR * std) if std is not None else self.floor


def _exact_reason(reference: dict[str, str] | None, here: dict[str, str]) -> str | None:
    """Why the comparison is exact, or None when the reference or these runs were not made in strict mode on
    a CPU of the same machine class."""
    if reference is None or any(provenance.get(key) != value for provenance in (reference, here)
                                for key, value in (("mode", "strict"), ("device", "cpu"))):
        return None
    if reference.get("machine") != here.get("machine"):
        return None
    return (f"exactly: the reference was recorded in strict mode on the CPU ({reference['machine']}) and "
            "these runs are made the same way, so every score must be equal to the bit")


def comparison_rule(reference: dict[str, str] | None, here: dict[str, str], tolerance: float | None) -> Rule:
    """Exact when both sides are strict-mode CPU runs of one machine class; `tolerance` when the user gave
    one; otherwise max(`DEFAULT_TOLERANCE`, `SPREAD_FACTOR` x the seeds' std)."""
    if tolerance is not None:
        if not tolerance >= 0:
            raise ValueError(f"the tolerance must be a number >= 0; got {tolerance}")
        return Rule(tolerance, False, f"within {tolerance}, as --tolerance asks")
    exact = _exact_reason(reference, here)
    if exact is not None:
        return Rule(0.0, False, exact)
    made = "in an unrecorded way" if reference is None else (
        f"in {reference.get('mode')} mode on {reference.get('device')} ({reference.get('machine')})")
    return Rule(DEFAULT_TOLERANCE, True,
                f"within max({DEFAULT_TOLERANCE}, {SPREAD_FACTOR:g} x the seeds' std of each score): the "
                f"reference was made {made}, these runs in {here.get('mode')} mode on {here.get('device')} "
                f"({here.get('machine')}); only strict-mode CPU runs of one machine class compare exactly")


def provenance_warning(reference: dict[str, str] | None, here: dict[str, str]) -> str | None:
    """One sentence naming what differs between how the reference was made and how these runs are."""
    if reference is None:
        return "warning: the reference does not record how it was made; re-record it with --write-reference"
    differing = [f"{key} {reference.get(key)} (here {here.get(key)})" for key in PROVENANCE_KEYS
                 if reference.get(key) != here.get(key)]
    if not differing:
        return None
    return (f"warning: the reference was made with {', '.join(differing)}, so its scores may differ from "
            "these runs' beyond rounding")


def _status(reference: float | None, measured: float | None, tolerance: float) -> str:
    if reference is None or measured is None:
        return "ok" if reference is None and measured is None else "beyond"
    return "ok" if math.isclose(measured, reference, rel_tol=0.0, abs_tol=tolerance) else "beyond"


DEFAULT_RULE = Rule(DEFAULT_TOLERANCE, True, f"within max({DEFAULT_TOLERANCE}, the seeds' spread)")


def compare(reference: Mapping[str, Metrics], measured: Mapping[str, Metrics],
            rule: Rule = DEFAULT_RULE) -> list[Difference]:
    """Every score of the reference against the run's, and the run's scores the reference lacks; the
    largest differences first (missing and null ones before all)."""
    differences = []
    for run in sorted(set(reference) | set(measured)):
        expected, actual = reference.get(run, {}), measured.get(run, {})
        for metric in sorted(set(expected) | set(actual)):
            if metric not in actual:
                status = "missing"
            elif metric not in expected:
                status = "new"
            else:
                status = _status(expected[metric], actual[metric], rule.tolerance(expected, metric))
            differences.append(Difference(run, metric, expected.get(metric), actual.get(metric), status,
                                          rule.tolerance(expected, metric)))
    return sorted(differences, key=lambda d: -math.inf if d.delta is None else -abs(d.delta))


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
    rows = ["| run | metric | reference | measured | difference | allowed | status | protocol |",
            "|---|---|---:|---:|---:|---:|---|---|"]
    for d in differences:
        if d.status == "ok" and d.delta in (None, 0.0):
            continue
        delta = "" if d.delta is None else f"{d.delta:+.4f}" if abs(d.delta) >= 1e-4 else f"{d.delta:+.1e}"
        rows.append(f"| {d.run} | {d.metric} | {_number(d.reference)} | {_number(d.measured)} | {delta} | "
                    f"{d.tolerance:g} | {d.status} | {protocol(d.metric)} |")
    return "\n".join(rows)


def write_reference(path: Path, profile: str, runs: Mapping[str, Metrics], note: str,
                    provenance: Mapping[str, str]) -> None:
    """Write `runs` as the reference of `profile`, with how they were made (`training.reproducibility.
    provenance`; JSON, keys sorted, so a diff shows what changed)."""
    document = {"version": REFERENCE_VERSION, "profile": profile, "note": note, "provenance": provenance,
                "runs": runs}
    write_atomic(Path(path), json.dumps(document, indent=1, sort_keys=True) + "\n")


def read_reference(path: Path, profile: str) -> Reference:
    """The reference file written for `profile`; another profile's is an error naming both."""
    path = Path(path)
    if not path.is_file():
        raise MetricsReferenceError(f"reference file not found: {path} (write one with `geofm compare "
                                    "--write-reference`)")
    try:
        document = json.loads(path.read_text())
        version, written_for, runs = document["version"], document["profile"], document["runs"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise MetricsReferenceError(f"{path}: not a geofm metrics reference ({error!r})") from None
    if version not in (1, REFERENCE_VERSION):
        raise MetricsReferenceError(f"{path}: reference version {version}; this geofm reads "
                                    f"{REFERENCE_VERSION}")
    if written_for != profile:
        raise MetricsReferenceError(f"{path} holds the metrics of profile {written_for!r}, the active "
                                    f"profile is {profile!r}: compare with --profile {written_for} or "
                                    "another reference")
    return Reference(runs, document.get("provenance"))
