"""Tiny geofm projects for the fault-injection tests: a prepared template copied per scenario, `geofm`
processes started on them, and what their MLflow store holds."""

from __future__ import annotations

import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path

import torch
import yaml
from kill_points import install as install_kill_point
from mlflow.entities import Run
from mlflow.entities.model_registry import ModelVersion
from tiny_benchmark import REPO, write_tiny_params

from pipelines.cli.main import main
from pipelines.tracking.store import BENCHMARK_TAG, TRAINING_TAG, BenchmarkStore
from training.settings import load_settings

TASK = "salt"
EPOCHS = 2
"""Two epochs, so that a kill can fall between them and a resumed run must continue a curve."""
UMASK = 0o027
"""The umask the test processes run with: folders they create must get 0o750, files 0o640."""
STORE_DIR = "mlflow"
"""The folder of the MLflow store (database and artifacts) in params.yaml."""
LEFTOVER = re.compile(r"\..+\.(staging|replaced|tmp)-.+|\.zenodo-staging")
"""Names of the temporary siblings geofm writes before renaming (`training.atomic`) and of zenodo staging."""


def write_params(root: Path, models: Sequence[str], **train: object) -> Path:
    """`root/params.yaml`: the tiny demo project on task salt with `models`, EPOCHS epochs, and `train`
    overrides of the demo profile's train section."""
    path = write_tiny_params(root, [TASK], models)
    params = yaml.safe_load(path.read_text())
    # Fast kernels: strict mode sizes torch's thread pool in each process, and a child forked from this
    # test process (`fork_geofm`) cannot start a new OpenMP pool (it hangs); these tests compare runs of
    # one machine, which repeat themselves in either mode.
    params["profiles"]["demo"]["train"].update(epochs=EPOCHS, reproducibility="fast", **train)
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def edit_params(root: Path, section: str, **values: object) -> None:
    """Set `values` in the demo profile's `section` of `root/params.yaml`."""
    path = Path(root) / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["profiles"]["demo"][section].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def copy_project(template: Path, root: Path, *, with_store: bool = True) -> Path:
    """A copy of the prepared `template` at `root`, with its MLflow store or without one."""
    shutil.copytree(template, root, ignore=None if with_store else shutil.ignore_patterns(STORE_DIR))
    return root


def geofm(root: Path, *arguments: str) -> list[str]:
    """The command line of `geofm --root <root> <arguments>`."""
    return [sys.executable, "-m", "pipelines", "--root", str(root), *arguments]


def train_arguments(model: str) -> list[str]:
    return ["train", "--task", TASK, "--model", model]


def train_command(root: Path, model: str) -> list[str]:
    return geofm(root, *train_arguments(model))


ENVIRONMENT = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
               "TQDM_DISABLE": "1"}
"""One thread per process (the tests share two cores), offline, no progress bars."""


def start(command: list[str], log: Path) -> subprocess.Popen:
    """`command` started in the repository with ENVIRONMENT and the test umask; its output goes to `log`."""
    with log.open("w") as output:
        return subprocess.Popen(command, cwd=REPO, env={**os.environ, **ENVIRONMENT}, stdout=output,
                                stderr=subprocess.STDOUT, umask=UMASK)


@dataclass(frozen=True)
class Finished:
    """A process that ended: its exit status and what it printed."""

    status: int
    output: str


def run(command: list[str], timeout: float = 300) -> Finished:
    """`command` run to its end as `start` would."""
    done = subprocess.run(command, cwd=REPO, env={**os.environ, **ENVIRONMENT}, capture_output=True,
                          text=True, umask=UMASK, timeout=timeout)
    return Finished(done.returncode, done.stdout + done.stderr)


def _forked_main(argv: list[str], log: Path, kill_point: str | None, user: int | None) -> None:
    os.umask(UMASK)
    torch.set_num_threads(1)
    output = log.open("w", buffering=1)
    os.dup2(output.fileno(), 1)
    os.dup2(output.fileno(), 2)
    sys.stdout = sys.stderr = output
    if user is not None:
        os.setgid(user)
        os.setuid(user)
    if kill_point is not None:
        install_kill_point(kill_point)
    try:
        status = main(argv)
    except BaseException:  # reported in the log, as the interpreter would
        traceback.print_exc()
        status = 1
    output.flush()
    os._exit(status)


def fork_geofm(root: Path, arguments: list[str], log: Path, *, kill_point: str | None = None,
               user: int | None = None) -> BaseProcess:
    """`geofm --root <root> <arguments>` in a child forked from this process, which has imported geofm
    already (a new interpreter spends most of a tiny training importing): test umask, one thread, output to
    `log`, SIGKILLed at `kill_point` (see `tests/kill_points.py`) if given, as user and group id `user` if
    given."""
    process = multiprocessing.get_context("fork").Process(
        target=_forked_main, args=(["--root", str(root), *arguments], log, kill_point, user))
    process.start()
    return process


def _wait(process: subprocess.Popen | BaseProcess, timeout: float) -> int:
    if isinstance(process, subprocess.Popen):
        return process.wait(timeout)
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        raise TimeoutError(f"{process.name} still ran after {timeout} s")
    return process.exitcode


def wait_all(processes: dict[str, tuple[subprocess.Popen | BaseProcess, Path]],
             timeout: float = 600) -> dict[str, Finished]:
    """Wait for every started process; its exit status (minus the signal that killed it) and output."""
    return {name: Finished(_wait(process, timeout), log.read_text())
            for name, (process, log) in processes.items()}


def store_of(root: Path) -> BenchmarkStore:
    return BenchmarkStore.for_project(load_settings(Path(root) / "params.yaml").mlflow, root)


def runs(store: BenchmarkStore) -> tuple[list[Run], list[Run]]:
    """The store's parent runs and its training runs."""
    everything = store.client.search_runs([store.experiment_id()], max_results=1000)
    parents = [run for run in everything if BENCHMARK_TAG in run.data.tags]
    trainings = [run for run in everything if TRAINING_TAG in run.data.tags]
    return parents, trainings


def versions(store: BenchmarkStore) -> list[ModelVersion]:
    """Every model version in the store's registry."""
    return list(store.client.search_model_versions(max_results=1000))


def leftovers(root: Path) -> list[Path]:
    """Temporary siblings anywhere under `root`."""
    return sorted(path for path in Path(root).rglob("*") if LEFTOVER.fullmatch(path.name))
