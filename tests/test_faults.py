"""Fault injection: what geofm promises under concurrency, SIGKILL and bad input (README "What geofm
promises when things go wrong").

`geofm` processes on tiny projects (task salt, 28-pixel sections, two epochs): trainings started together
on a fresh MLflow sqlite store, the same training twice, trainings killed with SIGKILL at chosen points
(`tests/kill_points.py`) and run again, and each error a user can cause ending as one sentence with exit
status 2. The trainings started together are `python -m pipelines` processes; the others are forked from
this process, which has imported geofm already (a tiny training spends most of a new interpreter's time
importing). Independent scenarios run side by side to keep the module short (about 2 min of CPU).
"""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.queues import SimpleQueue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from fault_projects import (
    ENVIRONMENT,
    TASK,
    UMASK,
    Finished,
    copy_project,
    edit_params,
    fork_geofm,
    geofm,
    leftovers,
    run,
    runs,
    start,
    store_of,
    train_arguments,
    train_command,
    versions,
    wait_all,
    write_params,
)
from tiny_benchmark import REPO
from zenodo_standin import ZenodoStandin, route_zenodo_to

from pipelines.cli.main import main
from pipelines.tracking.store import registered_model_name
from training.data import zenodo
from training.settings import load_settings

MODELS = ["unet", "linear-lora", "linear-frozen"]
"""Trained together on one fresh store; their results are the uninterrupted baselines."""
KILLS = {"mid-epoch": "linear-lora", "after-checkpoint": "unet", "while-logging": "unet",
         "after-logging": "linear-lora", "while-staging": "unet", "after-registration": "unet"}
"""Kill point (tests/kill_points.py) -> the model whose training is killed there and run again."""
SEED = "1234"
RESULT_FILES = ("metrics.json", "history.csv", f"seeds/{SEED}/metrics.json", f"seeds/{SEED}/history.csv")


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def error_line(output: str, command: str) -> str:
    """The one line of `output` that reports the failure of `geofm <command>`; no traceback anywhere."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith(f"geofm {command}: ")]
    assert len(lines) == 1, output
    return lines[0]


def reseed(root: Path, seed: int) -> None:
    """Give the demo profile's synthetic data of `root` another seed."""
    synthetic = yaml.safe_load((root / "params.yaml").read_text())["profiles"]["demo"]["data"]["synthetic"]
    edit_params(root, "data", synthetic={**synthetic, "seed": seed})


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw and prepared salt data and params.yaml for MODELS, written under the test umask."""
    root = tmp_path_factory.mktemp("template") / "project"
    root.mkdir()
    write_params(root, MODELS)
    with umask(UMASK):
        assert main(["--root", str(root), "raw"]) == 0
        assert main(["--root", str(root), "prepare", "--task", TASK]) == 0
    store_of(root).experiment_id()  # an MLflow store made once, copied for the tests that need no fresh one
    return root


@dataclass(frozen=True)
class Killed:
    """One kill scenario: its project, the killed process, what it left (temporary siblings, the store's
    runs and versions), and the rerun."""

    root: Path
    model: str
    killed: Finished
    left_behind: list[Path]
    run_statuses: dict[str, str]
    version_run_statuses: list[str]
    rerun: Finished


@dataclass(frozen=True)
class Trained:
    """MODELS trained together on one fresh store (`root`), and every kill scenario."""

    root: Path
    trainings: dict[str, Finished]
    kills: dict[str, Killed]


def _store_state(root: Path) -> tuple[dict[str, str], list[str]]:
    """Training run id -> status, and the status of each model version's run."""
    store = store_of(root)
    _, trainings = runs(store)
    statuses = {run.info.run_id: run.info.status for run in trainings}
    return statuses, [store.client.get_run(version.run_id).info.status for version in versions(store)]


@pytest.fixture(scope="module")
def trained(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    """Everything that trains, side by side: MODELS at once on a fresh store and each training killed at
    its point; then the killed trainings run again."""
    folder = tmp_path_factory.mktemp("trained")
    root = copy_project(template, folder / "together", with_store=False)
    started = {model: (start(train_command(root, model), folder / f"{model}.log"), folder / f"{model}.log")
               for model in MODELS}
    for point, model in KILLS.items():
        log = folder / f"{point}.log"
        project = copy_project(template, folder / point)
        started[point] = (fork_geofm(project, train_arguments(model), log, kill_point=point), log)
    finished = wait_all(started)
    states = {point: (leftovers(folder / point), *_store_state(folder / point)) for point in KILLS}
    logs = {point: folder / f"{point}.rerun.log" for point in KILLS}
    reruns = wait_all({point: (fork_geofm(folder / point, train_arguments(model), logs[point]), logs[point])
                       for point, model in KILLS.items()})
    kills = {point: Killed(folder / point, model, finished[point], *states[point], reruns[point])
             for point, model in KILLS.items()}
    return Trained(root, {model: finished[model] for model in MODELS}, kills)


def test_trainings_started_together_on_a_fresh_store_lose_nothing(trained: Trained) -> None:
    for model, finished in trained.trainings.items():
        assert finished.status == 0, f"{model}:\n{finished.output}"
    store = store_of(trained.root)
    parents, trainings = runs(store)
    assert len(parents) == 1
    assert sorted(run.data.tags["geofm.model"] for run in trainings) == sorted(MODELS)
    assert {run.info.status for run in trainings} == {"FINISHED"}
    assert {run.data.tags["mlflow.parentRunId"] for run in trainings} == {parents[0].info.run_id}
    registered = versions(store)
    assert sorted(v.name for v in registered) == sorted(registered_model_name(TASK, m) for m in MODELS)
    assert {version.run_id for version in registered} == {run.info.run_id for run in trainings}
    assert len(store.client.search_experiments(filter_string=f"name = '{store.experiment}'")) == 1


def _parent_run_together(root: Path, start_line: Barrier, answers: SimpleQueue) -> None:
    store, settings = store_of(root), load_settings(root / "params.yaml")
    store.experiment_id()  # the client and experiment first, so that the processes race on the parent alone
    start_line.wait(timeout=120)
    answers.put(store.benchmark_run(settings))
    os._exit(0)


def test_processes_asking_for_the_parent_run_at_once_share_one(template: Path, tmp_path: Path) -> None:
    root = copy_project(template, tmp_path / "project")
    context, count = multiprocessing.get_context("fork"), 4
    start_line, answers = context.Barrier(count + 1), context.SimpleQueue()
    processes = [context.Process(target=_parent_run_together, args=(root, start_line, answers))
                 for _ in range(count)]
    for process in processes:
        process.start()
    start_line.wait(timeout=120)
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0] * count
    assert len({answers.get() for _ in processes}) == 1 and len(runs(store_of(root))[0]) == 1


def test_the_same_training_twice_at_once_is_refused_naming_its_folder(template: Path, tmp_path: Path) -> None:
    root = copy_project(template, tmp_path / "project")
    checkpoints = root / "checkpoints" / TASK / "unet"
    first = fork_geofm(root, train_arguments("unet"), tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 120
        while not list(checkpoints.glob(".*.lock")):
            assert first.is_alive() and time.monotonic() < deadline, (tmp_path / "first.log").read_text()
            time.sleep(0.01)
        time.sleep(0.05)  # the lock file is made just before it is locked
        os.kill(first.pid, signal.SIGSTOP)  # the first trainer holds its folder for as long as it likes
        second = wait_all({"second": (fork_geofm(root, train_arguments("unet"), tmp_path / "second.log"),
                                      tmp_path / "second.log")})["second"]
    finally:
        os.kill(first.pid, signal.SIGCONT)
    (lock,) = checkpoints.glob(".*.lock")
    line = error_line(second.output, "train")
    assert second.status == 2
    assert f"checkpoint folder {checkpoints / lock.name[1:-len('.lock')]} is in use" in line
    assert wait_all({"first": (first, tmp_path / "first.log")})["first"].status == 0
    store = store_of(root)
    _, trainings = runs(store)
    assert [run.info.status for run in trainings] == ["FINISHED"]
    assert [version.run_id for version in versions(store)] == [trainings[0].info.run_id]


@pytest.mark.parametrize("point", list(KILLS))
def test_a_killed_training_run_again_gives_the_uninterrupted_result(trained: Trained, point: str) -> None:
    killed = trained.kills[point]
    assert killed.killed.status == -signal.SIGKILL, killed.killed.output
    assert killed.rerun.status == 0, killed.rerun.output
    run_dir = Path("runs") / TASK / killed.model
    for name in RESULT_FILES:
        assert (killed.root / run_dir / name).read_text() == (trained.root / run_dir / name).read_text(), name
    assert bool(killed.left_behind) == (point == "while-staging")  # the kill left the artifacts half staged
    assert leftovers(killed.root) == []
    checkpoints = killed.root / "checkpoints" / TASK / killed.model
    assert [path.name for path in checkpoints.iterdir() if not path.name.startswith(".")] == []


@pytest.mark.parametrize("point", list(KILLS))
def test_a_killed_training_continues_its_run_and_registers_once(trained: Trained, point: str) -> None:
    killed = trained.kills[point]
    (killed_run, status), = killed.run_statuses.items()  # the kill left exactly one run
    assert status == ("FINISHED" if point == "after-registration" else "RUNNING")
    assert set(killed.version_run_statuses) <= {"FINISHED"}  # never a version of an unfinished run
    store = store_of(killed.root)
    parents, trainings = runs(store)
    assert [run.info.run_id for run in trainings] == [killed_run]  # continued, not duplicated
    assert trainings[0].info.status == "FINISHED" and len(parents) == 1
    name = registered_model_name(TASK, killed.model)
    assert [(v.name, v.run_id) for v in versions(store)] == [(name, killed_run)]
    assert store.client.get_model_version_by_alias(name, store.best_alias).run_id == killed_run


@pytest.mark.parametrize("point", list(KILLS))
def test_a_rerun_leaves_the_run_one_logged_model_and_no_stray_artifacts(trained: Trained, point: str) -> None:
    killed = trained.kills[point]
    store = store_of(killed.root)
    (killed_run,) = killed.run_statuses
    logged = store.client.search_logged_models([store.experiment_id()],
                                               filter_string=f"source_run_id = '{killed_run}'")
    assert [model.status.name for model in logged] == ["READY"]  # the killed attempt's PENDING one is gone
    (version,) = versions(store)
    assert version.source == f"models:/{logged[0].model_id}"  # the registered model is the one kept
    models = Path(urlparse(logged[0].artifact_location).path).parent.parent  # every logged model's folder
    of_run = [folder.name for folder in models.iterdir()
              if killed_run in _text(folder / "artifacts" / "MLmodel")]
    assert of_run == [logged[0].model_id]  # no folder of a killed attempt's model is left


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


@pytest.mark.parametrize("point", list(KILLS))
def test_a_continued_run_holds_the_whole_curve_once(trained: Trained, point: str) -> None:
    killed = trained.kills[point]
    store = store_of(killed.root)
    (killed_run,) = killed.run_statuses
    history = pd.read_csv(killed.root / "runs" / TASK / killed.model / "history.csv")
    for metric in ("train_loss", "val_miou"):
        logged = sorted((m.step, m.value) for m in store.client.get_metric_history(killed_run, metric))
        assert logged == list(zip(history["epoch"], history[metric], strict=True)), metric


def test_staged_outputs_get_the_process_umask(template: Path, trained: Trained) -> None:
    folders = [template / "data" / "raw" / TASK, template / "data" / "prepared" / TASK,
               trained.root / "runs" / TASK / "unet" / "seeds" / SEED / "artifacts"]
    for folder in folders:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o777 & ~UMASK, folder
        for file in folder.iterdir():
            if file.is_file():
                assert stat.S_IMODE(file.stat().st_mode) == 0o666 & ~UMASK, file


def test_the_parent_run_stays_running_until_the_report_finishes_it(
        trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "project"
    shutil.copytree(trained.root, root)
    store = store_of(root)
    (parent,), _ = runs(store)
    assert parent.info.status == "RUNNING"
    assert main(["--root", str(root), "report"]) == 0, capsys.readouterr().err
    parent = store.client.get_run(parent.info.run_id)
    assert parent.info.status == "FINISHED"
    assert "report/benchmark.md" in [item.path for item in store.client.list_artifacts(parent.info.run_id,
                                                                                         "report")]
    with store.training_run(load_settings(root / "params.yaml"), TASK, "unet", "test", "another", 1):
        assert store.client.get_run(parent.info.run_id).info.status == "RUNNING"  # the report is stale


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_zenodo_unreachable_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_params(tmp_path, MODELS)
    edit_params(tmp_path, "data", source="zenodo")
    record = load_settings(tmp_path / "params.yaml").data.record
    with route_zenodo_to(_closed_port()):
        status = main(["--root", str(tmp_path), "raw"])
    line = error_line(capsys.readouterr().err, "raw")
    assert status == 2
    assert line.startswith(f"geofm raw: Zenodo cannot be reached to fetch record {record}")
    assert "data.source: synthetic" in line


def test_a_checksum_error_after_retries_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(zenodo, "RETRY_PAUSE_SECONDS", 0.0)
    monkeypatch.setattr(zenodo, "BACKOFF_FACTOR", 0.0)
    write_params(tmp_path, MODELS)
    edit_params(tmp_path, "data", source="zenodo")
    record = load_settings(tmp_path / "params.yaml").data.record
    with ZenodoStandin(record, {"salt.zip": b"not the bytes the record lists\n"}) as server, \
            route_zenodo_to(server.port):
        server.wrong_md5.add("salt.zip")
        status = main(["--root", str(tmp_path), "raw"])
    line = error_line(capsys.readouterr().err, "raw")
    assert status == 2
    assert "checksum error for salt.zip" in line and str(tmp_path / "data" / "raw") in line
    assert not (tmp_path / "data" / "raw" / "salt.zip").exists()


def test_a_non_finite_loss_is_one_sentence_and_registers_nothing(template: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str],
                                                                   single_torch_thread: None) -> None:
    root = copy_project(template, tmp_path / "project")
    edit_params(root, "train", lr=1e30)
    status = main(["--root", str(root), "train", "--task", TASK, "--model", "unet"])
    line = error_line(capsys.readouterr().err, "train")
    assert status == 2 and "non-finite training loss" in line
    store = store_of(root)
    _, trainings = runs(store)
    assert [run.info.status for run in trainings] == ["FAILED"] and versions(store) == []


@pytest.fixture
def world_readable_project(template: Path) -> Iterator[Path]:
    """A copy of the template that an unprivileged user can read (pytest's own folders are private)."""
    folder = Path(tempfile.mkdtemp(prefix="geofm-faults-"))
    folder.chmod(0o755)
    root = copy_project(template, folder / "project")
    subprocess.run(["chmod", "-R", "a+rX", str(root)], check=True)
    leases = folder / "devices"  # the unprivileged user's device leases: settings refuse an unwritable one
    leases.mkdir(mode=0o777)
    leases.chmod(0o777)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["orchestration"]["lease_dir"] = str(leases)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    yield root
    subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)
    shutil.rmtree(folder)


def test_a_read_only_raw_folder_is_one_sentence_and_stays_whole(world_readable_project: Path) -> None:
    root = world_readable_project
    raw = root / "data" / "raw"
    before = {path: path.read_bytes() for path in raw.rglob("*") if path.is_file()}
    for folder in (raw, raw / TASK):
        folder.chmod(0o555)
    reseed(root, 1)  # other samples: unchanged ones are not rewritten
    nobody = 65534 if os.geteuid() == 0 else None  # root writes anywhere: run as an unprivileged user
    log = root.parent / "raw.log"
    finished = wait_all({"raw": (fork_geofm(root, ["raw"], log, user=nobody), log)})["raw"]
    line = error_line(finished.output, "raw")
    assert finished.status == 2
    owner = raw / TASK / ".geofm-raw.json"
    assert line == f"geofm raw: cannot write {owner}: Permission denied in folder {raw / TASK}"
    assert {path: path.read_bytes() for path in raw.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize(("name", "array"), [("empty.npy", np.zeros((0, 0), dtype=np.float32)),
                                             ("words.npy", np.array([["a", "b"], ["c", "d"]]))])
def test_an_unusable_npy_given_to_predict_is_one_sentence_naming_it(
        trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, array: np.ndarray
) -> None:
    survey = tmp_path / name
    np.save(survey, array)
    status = main(["--root", str(trained.root), "predict", "--model", registered_model_name(TASK, "unet"),
                   "--input", str(survey), "--output", str(tmp_path / "classes.npy")])
    line = error_line(capsys.readouterr().err, "predict")
    assert status == 2 and str(survey) in line
    assert not (tmp_path / "classes.npy").exists()


def test_a_yaml_syntax_error_is_one_sentence_naming_the_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("profile: demo\ntrain:\n  lr: [1e-3\n")
    finished = run(geofm(tmp_path, "raw"))
    assert finished.status == 2
    assert error_line(finished.output, "raw").startswith(f"geofm raw: {tmp_path / 'params.yaml'}: line ")
    assert finished.output.strip().count("\n") == 0


def test_an_empty_validation_split_is_refused_at_load(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    write_params(tmp_path, MODELS)
    edit_params(tmp_path, "data", val_fraction=0)
    status = main(["--root", str(tmp_path), "raw"])
    line = error_line(capsys.readouterr().err, "raw")
    assert status == 2 and "data.val_fraction" in line
    assert not (tmp_path / "data").exists()


PREDICT = ["predict", "--model", registered_model_name(TASK, "unet")]
COMMON_MISTAKES = [
    pytest.param(["report"], "train first", id="report-before-training"),
    pytest.param(["train", "--task", TASK, "--model", "dpt-lora"], "dpt-lora", id="unconfigured-model"),
    pytest.param(["train", "--task", TASK, "--model", "unet"], "prepare", id="train-before-prepare"),
    pytest.param([*PREDICT, "--input", "{tmp}/none.npy", "--output", "{tmp}/o.npy"], "none.npy",
                 id="missing-survey"),
    pytest.param([*PREDICT, "--input", "{tmp}/nan.npy", "--output", "{tmp}/o.npy"], "nan.npy",
                 id="nan-survey"),
    pytest.param([*PREDICT, "--input", "{tmp}/bad.sgy", "--output", "{tmp}/o.npy"], "bad.sgy",
                 id="corrupt-segy"),
    pytest.param([*PREDICT, "--input", "{tmp}/ok.npy", "--output", "{tmp}/o.txt"], "o.txt",
                 id="output-not-npy"),
    pytest.param(["predictions", "--survey", "nosuch"], "nosuch", id="unknown-survey"),
    pytest.param(["import", "--task", TASK, "--model", "unet", "--checkpoint", "{tmp}/none.pth"], "none.pth",
                 id="missing-authors-checkpoint"),
]


@pytest.mark.parametrize(("arguments", "named"), COMMON_MISTAKES)
def test_a_common_mistake_is_one_sentence_naming_its_cause(
        trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], named: str
) -> None:
    """Mistakes outside the issue's list, each a traceback the day the CLI stopped catching ValueError,
    KeyError and FileNotFoundError (it catches GeofmError only, so a bug keeps its traceback)."""
    np.save(tmp_path / "nan.npy", np.full((28, 28), np.nan, dtype=np.float32))
    np.save(tmp_path / "ok.npy", np.linspace(0, 255, 28 * 28, dtype=np.float32).reshape(28, 28))
    (tmp_path / "bad.sgy").write_bytes(b"not SEG-Y" * 400)
    fresh = tmp_path / "fresh"  # configured, nothing written yet
    fresh.mkdir()
    write_params(fresh, MODELS)
    root = trained.root if arguments[0] in ("predict", "predictions", "import") else fresh
    status = main(["--root", str(root), *(argument.format(tmp=tmp_path) for argument in arguments)])
    line = error_line(capsys.readouterr().err, arguments[0])
    assert status == 2 and named in line


# Issue 20: nothing lost, nothing trusted blindly.

def _file_states(folder: Path) -> dict[Path, tuple[int, int]]:
    """Each file under `folder` with its inode and modification time: a rewrite changes one or both."""
    files = [path for path in folder.rglob("*") if path.is_file()]
    return {path: (path.stat().st_ino, path.stat().st_mtime_ns) for path in files}


def test_raw_keeps_a_users_file_and_reruns_rewrite_nothing_unchanged(tmp_path: Path) -> None:
    write_params(tmp_path, MODELS)
    assert main(["--root", str(tmp_path), "raw"]) == 0
    assert main(["--root", str(tmp_path), "prepare", "--task", TASK]) == 0
    notes = tmp_path / "data" / "raw" / TASK / "MY_NOTES.txt"
    notes.write_text("x\n")
    before = _file_states(tmp_path / "data")
    assert main(["--root", str(tmp_path), "raw"]) == 0
    assert main(["--root", str(tmp_path), "prepare", "--task", TASK]) == 0
    assert _file_states(tmp_path / "data") == before
    reseed(tmp_path, 3)
    assert main(["--root", str(tmp_path), "raw"]) == 0
    assert notes.read_text() == "x\n"


@pytest.mark.parametrize("owner", [None, "zenodo record 12798750"], ids=["unrecorded", "zenodo"])
def test_a_synthetic_raw_never_replaces_other_data(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                    owner: str | None) -> None:
    """Data `geofm raw` did not write (a hand-placed or older extraction) or of another profile's source."""
    write_params(tmp_path, MODELS)
    record = tmp_path / "data" / "raw" / TASK / "train" / "input" / "0.dat"
    record.parent.mkdir(parents=True)
    record.write_bytes(b"\x01" * 28 * 28 * 4)
    if owner is not None:
        (record.parents[2] / ".geofm-raw.json").write_text(
            json.dumps({"origin": owner, "complete": True, "files": ["train/input/0.dat"]}))
    status = main(["--root", str(tmp_path), "raw"])
    line = error_line(capsys.readouterr().err, "raw")
    assert status == 2 and str(record.parents[2]) in line and "data.raw_dir" in line
    assert (owner or "did not write") in line
    assert record.read_bytes() == b"\x01" * 28 * 28 * 4


def _flip(array: Path) -> None:
    data = bytearray(array.read_bytes())
    data[-2000:] = np.full(500, 9e15, dtype=np.float32).tobytes()
    array.write_bytes(bytes(data))


def _truncate(array: Path) -> None:
    array.write_bytes(array.read_bytes()[:-28])


def _corrupt_header(array: Path) -> None:
    data = bytearray(array.read_bytes())
    data[10:20] = b"garbage!!!"
    array.write_bytes(bytes(data))


def _out_of_range_label(array: Path) -> None:
    data = bytearray(array.read_bytes())
    data[-1] = 7
    array.write_bytes(bytes(data))


DAMAGES = {"flipped-bytes": ("train_inputs.npy", _flip), "truncated": ("test_labels.npy", _truncate),
           "corrupt-header": ("val_inputs.npy", _corrupt_header),
           "label-out-of-range": ("train_labels.npy", _out_of_range_label)}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_prepared_data_is_never_trained_on(template: Path, tmp_path: Path, damage: str,
                                                    capsys: pytest.CaptureFixture[str],
                                                    single_torch_thread: None) -> None:
    root = copy_project(template, tmp_path / "project")
    name, damaging = DAMAGES[damage]
    array = root / "data" / "prepared" / TASK / name
    damaging(array)
    status = main(["--root", str(root), "train", "--task", TASK, "--model", "unet"])
    line = error_line(capsys.readouterr().err, "train")
    assert status == 2 and str(array) in line and f"geofm prepare --task {TASK}" in line
    store = store_of(root)
    assert runs(store) == ([], []) and versions(store) == []


def test_repaired_prepared_data_trains_afresh(
        template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], single_torch_thread: None
) -> None:
    root = copy_project(template, tmp_path / "project")
    _flip(root / "data" / "prepared" / TASK / "train_inputs.npy")
    assert main(["--root", str(root), "train", "--task", TASK, "--model", "unet"]) == 2
    assert main(["--root", str(root), "prepare", "--task", TASK]) == 0
    assert main(["--root", str(root), "train", "--task", TASK, "--model", "unet"]) == 0
    assert "reused" not in capsys.readouterr().out
    _, trainings = runs(store_of(root))
    assert [run.info.status for run in trainings] == ["FINISHED"]


def _set(root: Path, path: str, value: object) -> None:
    """Set the dotted `path` of `root/params.yaml` (a `profiles.demo...` path edits the profile)."""
    params = yaml.safe_load((root / "params.yaml").read_text())
    *parents, key = path.split(".")
    section = params
    for parent in parents:
        section = section[parent]
    section[key] = value
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _write_empty(root: Path) -> None:
    (root / "params.yaml").write_text("# nothing set\n")


def _repeat_a_key(root: Path) -> None:
    with (root / "params.yaml").open("a") as params:
        params.write("train:\n  epochs: 3\n")


def _unwritable_lease_dir(root: Path) -> None:
    (root / "a-file").write_text("x\n")
    _set(root, "orchestration.lease_dir", str(root / "a-file" / "devices"))


BAD_SETTINGS = {
    "infinite-lr": (lambda root: _set(root, "profiles.demo.train.lr", float("inf")), "train.lr"),
    "boolean-batch-size": (lambda root: _set(root, "profiles.demo.train.batch_size", True),
                           "train.batch_size"),
    "boolean-epochs": (lambda root: _set(root, "profiles.demo.train.epochs", True), "train.epochs"),
    "empty-file": (_write_empty, "empty"),
    "repeated-key": (_repeat_a_key, "'train' is given twice"),
    "reversed-percentiles": (lambda root: _set(root, "predict.amplitude.percentiles", [99.0, 1.0]),
                             "predict.amplitude.percentiles"),
    "reversed-target-range": (lambda root: _set(root, "predict.amplitude.target_range", [255.0, 0.0]),
                              "predict.amplitude.target_range"),
    "alias-v1": (lambda root: _set(root, "mlflow.best_alias", "v1"), "mlflow.best_alias"),
    "alias-latest": (lambda root: _set(root, "mlflow.best_alias", "latest"), "mlflow.best_alias"),
    "unknown-device": (lambda root: _set(root, "profiles.demo.train.device", "gpu9"), "train.device"),
    "unknown-store": (lambda root: _set(root, "mlflow.tracking_uri", "bogus://x"), "mlflow.tracking_uri"),
    "missing-weights": (lambda root: _set(root, "profiles.demo.model.weights", "/nonexist.pth"),
                        "model.weights"),
    "unwritable-lease-dir": (_unwritable_lease_dir, "orchestration.lease_dir"),
}


@pytest.mark.parametrize("case", list(BAD_SETTINGS))
def test_a_bad_setting_is_refused_at_load_naming_its_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          case: str) -> None:
    write_params(tmp_path, MODELS)
    spoil, named = BAD_SETTINGS[case]
    spoil(tmp_path)
    status = main(["--root", str(tmp_path), "raw"])
    line = error_line(capsys.readouterr().err, "raw")
    assert status == 2 and named in line
    assert any(word in line for word in ("allowed", "expected", "should")) or "." not in named
    assert not (tmp_path / "data").exists()


def test_a_gpu_this_machine_lacks_is_refused_before_any_run(template: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_project(template, tmp_path / "project")
    absent = f"cuda:{torch.cuda.device_count()}"
    edit_params(root, "train", device=absent)
    status = main(["--root", str(root), "train", "--task", TASK, "--model", "unet"])
    line = error_line(capsys.readouterr().err, "train")
    assert status == 2 and f"train.device: {absent!r}" in line and "allowed here" in line
    assert runs(store_of(root)) == ([], [])


def test_ctrl_c_during_a_training_says_a_rerun_resumes(template: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       single_torch_thread: None) -> None:
    from training import fit

    root = copy_project(template, tmp_path / "project")
    train_epoch = fit._train_epoch

    def interrupted_at_epoch_2(*args: object, **kwargs: object) -> object:
        if args[7] == 2:  # (model, loader, loss_fn, optimizer, scheduler, num_classes, device, epoch, ...)
            raise KeyboardInterrupt
        return train_epoch(*args, **kwargs)

    monkeypatch.setattr(fit, "_train_epoch", interrupted_at_epoch_2)
    status = main(["--root", str(root), *train_arguments("unet")])
    line = error_line(capsys.readouterr().err, "train")
    assert status == 130 and "interrupted" in line and "resume" in line
    monkeypatch.setattr(fit, "_train_epoch", train_epoch)
    assert main(["--root", str(root), *train_arguments("unet")]) == 0
    _, trainings = runs(store_of(root))
    assert [run.info.status for run in trainings] == ["FINISHED"]


def test_a_closed_standard_output_is_one_sentence(template: Path, tmp_path: Path) -> None:
    root = copy_project(template, tmp_path / "project")
    command = " ".join(geofm(root, "prepare", "--task", TASK))
    done = subprocess.run(["bash", "-c", f"{command} | true; exit ${{PIPESTATUS[0]}}"], cwd=REPO,
                          env={**os.environ, **ENVIRONMENT}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 141
    line = error_line(done.stderr, "prepare")
    assert line == "geofm prepare: standard output was closed before all was printed"


def test_a_full_disk_under_checkpoints_is_one_sentence(template: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       single_torch_thread: None) -> None:
    from training import fit

    root = copy_project(template, tmp_path / "project")

    def full(state: object, path: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(fit, "save_atomic", full)
    status = main(["--root", str(root), *train_arguments("unet")])
    line = error_line(capsys.readouterr().err, "train")
    assert status == 2 and "No space left on device" in line and str(root / "checkpoints") in line


def test_a_read_only_store_is_one_sentence(world_readable_project: Path) -> None:
    root = world_readable_project
    _set(root, "orchestration.lease_dir", "")  # the leases in the user's temporary folder
    import pipelines.cli.commands.train  # noqa: F401 (imported here: the child's user cannot read /root)
    subprocess.run(["chmod", "-R", "a+w", str(root)], check=True)  # all writable but the store
    subprocess.run(["chmod", "-R", "a-w", str(root / "mlflow")], check=True)
    nobody = 65534 if os.geteuid() == 0 else None
    log = root.parent / "train.log"
    process = fork_geofm(root, train_arguments("unet"), log, user=nobody)
    finished = wait_all({"train": (process, log)})["train"]
    line = error_line(finished.output, "train")
    assert finished.status == 2 and str(root / "mlflow") in line


BAD_IMPORTS = {"garbage": b"not a checkpoint at all\n" * 10, "empty": b""}


@pytest.mark.parametrize("content", list(BAD_IMPORTS))
def test_an_unreadable_checkpoint_to_import_opens_no_run(
        trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str) -> None:
    checkpoint = tmp_path / f"{content}.pth"
    checkpoint.write_bytes(BAD_IMPORTS[content])
    before = len(runs(store_of(trained.root))[1])
    status = main(["--root", str(trained.root), "import", "--task", TASK, "--model", "unet",
                   "--checkpoint", str(checkpoint)])
    line = error_line(capsys.readouterr().err, "import")
    assert status == 2 and str(checkpoint) in line
    assert len(runs(store_of(trained.root))[1]) == before


def test_predict_refuses_a_zero_byte_npy_a_negative_shape_and_a_folder_as_output(
        trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "zero.npy").write_bytes(b"")
    np.linspace(0, 255, 40 * 40, dtype=np.float32).tofile(tmp_path / "section.dat")
    np.save(tmp_path / "ok.npy", np.linspace(0, 255, 28 * 28, dtype=np.float32).reshape(28, 28))
    (tmp_path / "folder").mkdir()
    cases = [(["--input", str(tmp_path / "zero.npy"), "--output", str(tmp_path / "a.npy")], "zero.npy"),
             (["--input", str(tmp_path / "section.dat"), "--shape", "-40", "-40", "--output",
               str(tmp_path / "b.npy")], "-40"),
             (["--input", str(tmp_path / "ok.npy"), "--output", str(tmp_path / "folder")], "folder")]
    for arguments, named in cases:
        status = main(["--root", str(trained.root), *PREDICT, *arguments])
        line = error_line(capsys.readouterr().err, "predict")
        assert status == 2 and named in line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["folder", "ok.npy", "section.dat", "zero.npy"]


def test_a_killed_prediction_leaves_nothing_after_a_rerun(trained: Trained, tmp_path: Path) -> None:
    survey = tmp_path / "survey.npy"
    np.save(survey, np.linspace(0, 255, 3 * 28 * 28, dtype=np.float32).reshape(3, 28, 28))
    out = tmp_path / "out"
    arguments = [*PREDICT, "--input", str(survey), "--output", str(out / "classes.npy")]
    log = tmp_path / "predict.log"
    killed = wait_all({"predict": (fork_geofm(trained.root, arguments, log, kill_point="while-predicting"),
                                   log)})["predict"]
    assert killed.status == -signal.SIGKILL and [path.name for path in out.iterdir()] != []
    assert main(["--root", str(trained.root), *arguments]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["classes.json", "classes.npy"]
