"""Settings that name files and folders of this machine, checked when they are loaded: a weight file that
must exist, a lease folder that must be writable (creating it is left to its user)."""

from __future__ import annotations

import os
from pathlib import Path

from training.settings.schema import Settings

NAMED_WEIGHTS = ("hub", "none")


def _nearest_existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def local_path_problem(settings: Settings, root: Path) -> str | None:
    """`key: what is wrong` for the first setting naming an unusable path (relative weights are under
    `root`, a relative lease folder under the working folder, as their users read them), else None."""
    weights = settings.model.weights
    if weights not in NAMED_WEIGHTS and not (Path(root) / weights).is_file():
        return (f"model.weights: no file {(Path(root) / weights)}; allowed: hub, none, or the path of a "
                ".pth/.safetensors file (relative to the project root)")
    lease_dir = settings.orchestration.lease_dir
    if lease_dir:
        existing = _nearest_existing(Path(lease_dir).absolute())
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            return (f"orchestration.lease_dir: {lease_dir!r} cannot be created or written ({existing} is not "
                    "a writable folder); allowed: a folder this user can write, or \"\" (a temporary one)")
    return None
