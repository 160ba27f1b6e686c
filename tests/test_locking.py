"""One trainer per checkpoint folder: a second process is refused (naming the folder) or waits for the
first; a killed holder leaves no stale lock."""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from training.locking import CheckpointLockedError, checkpoint_lock, lock_path

FORK = multiprocessing.get_context("fork")


def _hold(folder: Path, held, release, seconds: float) -> None:
    """In a child process: take the folder's lock, say so, hold it until told (or for `seconds`)."""
    with checkpoint_lock(folder, wait_seconds=0):
        held.set()
        release.wait(seconds)


@pytest.fixture()
def holder(tmp_path: Path):
    """A child process that holds the lock of `tmp_path/ckpt` until its `release` event is set."""
    folder = tmp_path / "checkpoints" / "ckpt"
    held, release = FORK.Event(), FORK.Event()
    process = FORK.Process(target=_hold, args=(folder, held, release, 30.0))
    process.start()
    assert held.wait(20), "the child never took the lock"
    yield folder, release, process
    if process.is_alive():  # (an Event whose waiter was killed must not be set: set() would wait for it)
        release.set()
    process.join(20)


def test_a_second_trainer_is_refused_naming_the_folder(holder) -> None:
    folder, _, _ = holder
    start = time.monotonic()
    expected = rf"checkpoint folder {folder} is in use by another training.*refused at once"
    with pytest.raises(CheckpointLockedError, match=expected):
        with checkpoint_lock(folder, wait_seconds=0):
            pytest.fail("two trainers held the same checkpoint folder")
    assert time.monotonic() - start < 5
    with pytest.raises(CheckpointLockedError, match=r"after waiting 0\.3 s"):
        with checkpoint_lock(folder, wait_seconds=0.3):
            pytest.fail("two trainers held the same checkpoint folder")


def test_a_second_trainer_waits_for_the_first(holder) -> None:
    folder, release, process = holder
    FORK.Process(target=lambda: (time.sleep(0.5), release.set())).start()
    start = time.monotonic()
    with checkpoint_lock(folder, wait_seconds=20):
        waited = time.monotonic() - start
        assert release.is_set()
    assert 0.3 < waited < 20


def test_a_killed_holder_leaves_no_stale_lock(holder) -> None:
    folder, _, process = holder
    os.kill(process.pid, signal.SIGKILL)
    process.join(20)
    with checkpoint_lock(folder, wait_seconds=5):
        pass
    assert lock_path(folder) == folder.parent / ".ckpt.lock" and lock_path(folder).is_file()


def test_the_lock_outlives_its_folder_and_other_folders_are_free(tmp_path: Path) -> None:
    """A training deletes its checkpoint folder while it holds the lock; the lock must still hold."""
    folder = tmp_path / "ckpt"
    with checkpoint_lock(folder, wait_seconds=0):
        folder.mkdir()
        folder.rmdir()
        held, release = FORK.Event(), FORK.Event()
        other = FORK.Process(target=_hold, args=(tmp_path / "other", held, release, 0.0))
        other.start()
        assert held.wait(20)  # another folder's lock is free
        other.join(20)
        with pytest.raises(CheckpointLockedError):
            with checkpoint_lock(folder, wait_seconds=0):
                pass
    with pytest.raises(ValueError, match="wait_seconds"):
        with checkpoint_lock(folder, wait_seconds=-1):
            pass
    with checkpoint_lock(folder, wait_seconds=math.inf):
        pass
