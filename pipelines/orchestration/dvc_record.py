"""What a stage run through Dagster wrote, recorded in DVC: `dvc commit -f` of the stage's instances (its
outputs into the cache, their hashes and the deps' into dvc.lock), so that `dvc status` is up to date right
after `geofm demo` and `dvc repro` then runs nothing. Only in a DVC repository (a `.dvc` folder at the
project root), one DVC call at a time (DVC holds a repository lock): a file lock in `.dvc/tmp`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import filelock

DVC_DIR = ".dvc"
LOCK_FILE = "geofm-commit.lock"


def is_dvc_repo(root: Path) -> bool:
    return (Path(root) / DVC_DIR).is_dir()


def record_in_dvc(root: Path, stages: list[str]) -> bool:
    """Commit `stages` (dvc.yaml instance names, e.g. `train@salt-unet`) in the DVC repository at `root`;
    False (nothing done) when `root` is not one. A failed commit raises, with DVC's own message."""
    if not stages or not is_dvc_repo(root):
        return False
    lock = Path(root) / DVC_DIR / "tmp" / LOCK_FILE
    lock.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(lock)):
        command = [sys.executable, "-m", "dvc", "commit", "--force", "--quiet", *stages]
        done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()
        raise RuntimeError(f"dvc commit {' '.join(stages)} in {root} failed: {said}")
    return True
