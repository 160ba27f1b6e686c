"""Outputs appear whole or not at all: what a SIGKILLed writer leaves behind is cleaned up by the next
one (and a replaced result put back), temporary files and folders get the process's normal permissions,
and an unwritable folder is one sentence naming it."""

from __future__ import annotations

import multiprocessing
import os
import pwd
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from training.atomic import (
    OutputNotWritableError,
    remove_stale_in,
    remove_stale_staging,
    staged_dir,
    write_atomic,
    write_atomic_with,
)
from training.data.synthetic import write_synthetic_dataset
from training.errors import GeofmError
from training.tasks import get_task

ROOT = Path(__file__).resolve().parents[1]


def _siblings(target: Path) -> list[str]:
    return sorted(path.name for path in target.parent.iterdir() if path.name.startswith(f".{target.name}."))


def _killed_at_ready(code: str, target: Path) -> int:
    """Run `code` in a new Python process (`T` is `target`), SIGKILL it once it prints `ready`, reap it;
    returns its pid."""
    script = f"from pathlib import Path\nT = Path({str(target)!r})\n{textwrap.dedent(code)}"
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout.readline().strip() == "ready"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)  # reaped: the pid names no process any more
    return process.pid


def _tree(folder: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in folder.iterdir()}


def test_staging_of_a_killed_writer_is_removed_when_the_next_stage_starts(tmp_path: Path) -> None:
    target = tmp_path / "artifacts"
    with staged_dir(target) as staging:
        (staging / "good.txt").write_text("good")
    pid = _killed_at_ready(
        """
        import time
        from training.atomic import staged_dir
        with staged_dir(T) as staging:
            (staging / "half.txt").write_text("half")
            print("ready", flush=True)
            time.sleep(60)
        """,
        target,
    )
    [left] = _siblings(target)
    assert left.startswith(f".artifacts.staging-{socket.gethostname()}-{pid}-")
    assert _tree(target) == {"good.txt": "good"}
    with staged_dir(target) as staging:
        (staging / "new.txt").write_text("new")
    assert _siblings(target) == []
    assert _tree(target) == {"new.txt": "new"}


def test_a_kill_between_the_two_renames_puts_the_previous_result_back(tmp_path: Path) -> None:
    target = tmp_path / "artifacts"
    with staged_dir(target) as staging:
        (staging / "good.txt").write_text("good")
    _killed_at_ready(
        """
        import os, pathlib, signal
        from training.atomic import staged_dir
        rename, renames = pathlib.Path.rename, []
        def killed_on_second_rename(self, to):
            renames.append(to)
            if len(renames) == 2:  # the previous result moved aside, the new one not yet in place
                print("ready", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
            return rename(self, to)
        pathlib.Path.rename = killed_on_second_rename
        with staged_dir(T) as staging:
            (staging / "new.txt").write_text("new")
        """,
        target,
    )
    assert not target.exists()
    assert [name.split("-")[0] for name in _siblings(target)] == [".artifacts.replaced", ".artifacts.staging"]
    assert remove_stale_staging(tmp_path / "other") == []
    assert len(remove_stale_in(tmp_path)) == 2  # as a stage does when it starts
    assert _tree(target) == {"good.txt": "good"}
    assert _siblings(target) == []


def test_a_live_writer_keeps_its_staging(tmp_path: Path) -> None:
    target = tmp_path / "artifacts"
    with staged_dir(target) as staging:
        remove_stale_staging(target)
        with staged_dir(target) as second:  # a second writer in this (live) process
            assert staging.is_dir() and second.is_dir()
    assert _siblings(target) == []


def test_temporary_file_of_a_killed_writer_is_removed_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    write_atomic(path, "old")
    _killed_at_ready(
        """
        from training.atomic import write_atomic_with
        def write(handle):
            handle.write(b"half")
            handle.flush()
            print("ready", flush=True)
            import time; time.sleep(60)
        write_atomic_with(T, write)
        """,
        path,
    )
    [left] = _siblings(path)
    assert left.startswith(".metrics.json.tmp-") and path.read_text() == "old"
    write_atomic(path, "new")
    assert _siblings(path) == [] and path.read_text() == "new"


@pytest.fixture()
def umask() -> Iterator[Callable[[int], None]]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield os.umask
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_outputs_get_the_process_permissions(tmp_path: Path, umask: Callable[[int], None], mask: int) -> None:
    umask(mask)
    target = tmp_path / "artifacts"
    with staged_dir(target) as staging:
        assert staging.stat().st_mode & 0o777 == 0o777 & ~mask
    assert target.stat().st_mode & 0o777 == 0o777 & ~mask
    write_atomic(tmp_path / "file.txt", "x")
    assert (tmp_path / "file.txt").stat().st_mode & 0o777 == 0o666 & ~mask


def test_write_atomic_with_syncs_and_leaves_nothing_on_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last.pt"
    write_atomic(path, b"old")
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")))

    def fails(handle) -> None:
        handle.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_atomic_with(path, fails)
    assert path.read_bytes() == b"old" and _siblings(path) == []
    write_atomic_with(path, lambda handle: handle.write(b"new"))
    assert path.read_bytes() == b"new" and _siblings(path) == []
    assert len(synced) == 1 and Path(synced[0]).name.startswith(".last.pt.tmp-")


def test_concurrent_writers_of_one_file_never_mix(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    contents = [bytes([index]) * 100_000 for index in range(8)]
    threads = [threading.Thread(target=write_atomic, args=(path, content)) for content in contents * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert path.read_bytes() in contents and _siblings(path) == []


def _in_unprivileged_child(action: Callable[[], None]) -> str:
    """Run `action` in a forked child that cannot bypass permissions (root drops to `nobody`); returns
    'ok' or the type and message of what it raised."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()

    def child() -> None:
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
        try:
            action()
            queue.put("ok")
        except Exception as error:  # reported to the parent
            queue.put(f"{type(error).__name__}: {error}")

    process = context.Process(target=child)
    process.start()
    answer = queue.get(timeout=60)
    process.join(30)
    return answer


@pytest.fixture()
def read_only_dir() -> Iterator[Path]:
    """A folder nobody can write to, reachable by an unprivileged process."""
    folder = Path(tempfile.mkdtemp(prefix="geofm-read-only-"))
    (folder / "raw").mkdir()
    folder.chmod(0o755)
    (folder / "raw").chmod(0o555)
    yield folder / "raw"
    subprocess.run(["chmod", "-R", "u+w", str(folder)], check=True)
    subprocess.run(["rm", "-rf", str(folder)], check=True)


def test_an_unwritable_folder_is_one_sentence_naming_it(read_only_dir: Path) -> None:
    def stage() -> None:
        with staged_dir(read_only_dir / "artifacts"):
            pass

    assert _in_unprivileged_child(stage) == (
        f"OutputNotWritableError: cannot write {read_only_dir / 'artifacts'}: Permission denied "
        f"in folder {read_only_dir}"
    )
    tasks = {"das": get_task("das").with_shape((8, 8))}
    synthetic = _in_unprivileged_child(lambda: write_synthetic_dataset(read_only_dir, tasks, 2, 1, seed=0))
    assert synthetic.startswith(f"OutputNotWritableError: cannot write {read_only_dir / 'das'}: Permission")
    assert "\n" not in synthetic


def test_a_read_only_output_folder_is_kept_whole_and_named(read_only_dir: Path) -> None:
    """A writable parent, but the output itself read-only: it cannot be moved aside to be replaced."""
    parent = read_only_dir.parent / "writable"
    (parent / "das").mkdir(parents=True)
    (parent / "das" / "old.txt").write_text("old")
    parent.chmod(0o777)
    (parent / "das").chmod(0o555)

    def stage() -> None:
        with staged_dir(parent / "das") as staging:
            (staging / "new.txt").write_text("new")

    answer = _in_unprivileged_child(stage)
    assert answer.startswith(f"OutputNotWritableError: cannot write {parent / 'das'}: Permission denied")
    assert sorted(path.name for path in parent.iterdir()) == ["das"]  # no staging or replaced leftovers
    assert _tree(parent / "das") == {"old.txt": "old"}
    assert issubclass(OutputNotWritableError, GeofmError) and issubclass(OutputNotWritableError, OSError)
