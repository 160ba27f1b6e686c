"""One training at a time per checkpoint folder: an exclusive lock held for the whole training.

The lock is `filelock`'s (an `flock` on Unix), taken on a hidden sibling file `.<folder>.lock`, so it
outlives the folder itself (a finished training deletes its checkpoints while still holding the lock). The
operating system releases it when the holder ends, even by SIGKILL: a lock is never left stale.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import filelock

from training.errors import GeofmError


class CheckpointLockedError(GeofmError, TimeoutError):
    """Another process trains into the same checkpoint folder."""


def lock_path(folder: Path) -> Path:
    """The lock file of a checkpoint folder: a hidden sibling, kept after the lock is released."""
    folder = Path(folder)
    return folder.with_name(f".{folder.name}.lock")


@contextmanager
def checkpoint_lock(folder: Path, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold the exclusive lock of `folder` for the body. If another process holds it, wait up to
    `wait_seconds` (0: not at all, `math.inf`: as long as it takes), then raise `CheckpointLockedError`."""
    if math.isnan(wait_seconds) or wait_seconds < 0:
        raise ValueError(f"wait_seconds must be >= 0 (or math.inf), got {wait_seconds}")
    path = lock_path(folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path, timeout=-1 if math.isinf(wait_seconds) else wait_seconds)
    try:
        lock.acquire()
    except filelock.Timeout:
        waited = "at once" if wait_seconds == 0 else f"after waiting {wait_seconds:g} s"
        raise CheckpointLockedError(
            f"checkpoint folder {Path(folder)} is in use by another training (lock file {path}), "
            f"refused {waited}: let that training finish, or give this one a longer wait"
        ) from None
    try:
        yield
    finally:
        lock.release()
