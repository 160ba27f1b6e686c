"""What a stage run through Dagster wrote, recorded in DVC: `dvc commit -f` of the stage's instances that
`dvc status` lists (their outputs into the cache, their hashes and the deps' into dvc.lock), so that `dvc
status` is up to date right after `geofm demo` and `dvc repro` then runs nothing. Only in a DVC repository
(a `.dvc` folder at the project root), one DVC call at a time (DVC holds a repository lock): a file lock in
`.dvc/tmp`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import filelock

DVC_DIR = ".dvc"
LOCK_FILE = "geofm-commit.lock"


def is_dvc_repo(root: Path) -> bool:
    return (Path(root) / DVC_DIR).is_dir()


def _dvc(root: Path, *arguments: str) -> str:
    """DVC's standard output of `dvc <arguments>` in `root`; a failure raises with DVC's own message."""
    done = subprocess.run([sys.executable, "-m", "dvc", *arguments], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()
        raise RuntimeError(f"dvc {' '.join(arguments)} in {root} failed: {said}")
    return done.stdout


def stale_stages(root: Path, stages: list[str]) -> list[str]:
    """The stages of `stages` that `dvc status` lists as changed. One status of the whole repository: named
    targets make DVC collect each on its own (36 s for the demo's 25 trainings, against 4 s for all)."""
    listed = json.loads(_dvc(root, "status", "--json").strip() or "{}")
    changed = {name.rpartition(":")[2] for name in listed}
    return [stage for stage in stages if stage in changed]


def record_in_dvc(root: Path, stages: list[str]) -> list[str]:
    """Commit the stages of `stages` (dvc.yaml instance names, e.g. `train@salt-unet`) that DVC sees changed,
    in the DVC repository at `root`; the stages committed (none when `root` is not one, or when DVC is up to
    date already: a rerun that reused every training records nothing)."""
    if not stages or not is_dvc_repo(root):
        return []
    lock = Path(root) / DVC_DIR / "tmp" / LOCK_FILE
    lock.parent.mkdir(parents=True, exist_ok=True)
    with filelock.FileLock(str(lock)):
        stale = stale_stages(root, stages)
        if stale:
            _dvc(root, "commit", "--force", "--quiet", *stale)
    return stale
