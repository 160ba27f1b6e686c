"""How long an up-to-date benchmark takes to answer again through each front door, on a finished project
folder (a git + DVC clone where `geofm demo` ran):

1. "Materialize all" as the Dagster UI launches it: an asset backfill of every asset and partition, added
   to the project's instance (`.dagster_home`) and run by `dagster-daemon` (started here, as `dagster dev`
   starts it); the wall time from launch to the backfill's end, and its runs. Skipped with `--no-backfill`.
2. `geofm benchmark` run again (what `geofm demo` runs: one in-process run per stage).
3. After each of them, `dvc status` then `dvc repro`: the wall time of each, and whether a stage ran.

    .venv/bin/python scripts/measure_rematerialize.py PROJECT [--no-backfill]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.execution.backfill import BULK_ACTION_TERMINAL_STATUSES, PartitionBackfill
from dagster._core.storage.tags import BACKFILL_ID_TAG
from dagster._core.utils import make_new_backfill_id

BIN = Path(sys.executable).parent
LOCATION = "pipelines.orchestration.location"


@dataclass(frozen=True)
class Timed:
    """One measured step: its wall seconds and a line saying what it did."""

    seconds: float
    note: str


def _environment(root: Path) -> dict[str, str]:
    """The environment of the project's commands: the venv first, the project's own code, its instance."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(root),
            "GEOFM_ROOT": str(root), "DAGSTER_HOME": str(root / ".dagster_home"), "DVC_NO_ANALYTICS": "1"}


def _timed_command(root: Path, command: list[str]) -> tuple[float, str]:
    start = time.monotonic()
    done = subprocess.run(command, cwd=root, env=_environment(root), capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {root}:\n{done.stdout}\n{done.stderr}")
    return time.monotonic() - start, done.stdout + done.stderr


def time_benchmark(root: Path) -> Timed:
    seconds, _ = _timed_command(root, [str(BIN / "geofm"), "--root", str(root), "benchmark"])
    return Timed(seconds, "geofm benchmark: one run per stage")


def time_dvc(root: Path) -> tuple[Timed, Timed]:
    """`dvc status` then `dvc repro`; each note says whether DVC found work."""
    status_s, status = _timed_command(root, [str(BIN / "dvc"), "status"])
    repro_s, repro = _timed_command(root, [str(BIN / "dvc"), "repro"])
    ran = repro.count("Running stage")
    return (Timed(status_s, "  then dvc status: " + ("up to date" if "up to date" in status else "changes")),
            Timed(repro_s, f"  then dvc repro: {ran} stages ran"))


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.5)


def time_backfill(root: Path, timeout_s: float = 1800) -> Timed:
    """"Materialize all": every asset and partition as one asset backfill, run by a daemon started here."""
    os.environ.update(DAGSTER_HOME=str(root / ".dagster_home"), GEOFM_ROOT=str(root))
    from pipelines.orchestration.definitions import build_definitions
    from training.settings import Project

    graph = build_definitions(Project.load(root)).resolve_asset_graph()
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-m", LOCATION], cwd=root,
                              env=_environment(root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        with dg.DagsterInstance.get() as instance:
            _wait(lambda: "BACKFILL" in (instance.get_daemon_heartbeats() or {}), 300, "the daemon")
            backfill_id = make_new_backfill_id()
            start = time.monotonic()
            instance.add_backfill(PartitionBackfill.from_asset_partitions(
                backfill_id=backfill_id, asset_graph=graph, partition_names=None,
                asset_selection=list(graph.get_all_asset_keys()), backfill_timestamp=time.time(), tags={},
                dynamic_partitions_store=instance, all_partitions=True, title="Materialize all",
                description=None, run_config=None))
            _wait(lambda: instance.get_backfill(backfill_id).status in BULK_ACTION_TERMINAL_STATUSES,
                  timeout_s, "the backfill")
            seconds = time.monotonic() - start
            status = instance.get_backfill(backfill_id).status.value
            runs = instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    finally:
        os.killpg(daemon.pid, 15)
        daemon.wait(timeout=60)
    return Timed(seconds, f"Materialize all (daemon backfill): {status}, {len(runs)} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, help="a finished project folder (git + DVC, after geofm demo)")
    parser.add_argument("--no-backfill", action="store_true", help="skip the daemon-driven backfill")
    args = parser.parse_args()
    root = args.project.resolve()
    for measure in ([] if args.no_backfill else [time_backfill]) + [time_benchmark]:
        for step in (measure(root), *time_dvc(root)):
            print(f"{step.seconds:8.1f} s  {step.note}", flush=True)


if __name__ == "__main__":
    main()
