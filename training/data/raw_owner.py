"""Which raw task folders geofm wrote, from which source, and which files in them are its own.

`geofm raw` keeps a manifest, `.geofm-raw.json`, in each task folder it writes: the data's origin
(`synthetic` or `zenodo record <id>`), whether the folder is complete, and the files it wrote there. A
rerun replaces or removes only the files the manifest lists (a user's own files stay) and rewrites only
those whose bytes changed. A folder holding another origin's data (another profile's) or files geofm did
not write is never written: the stage refuses, naming the folder, both origins and the fix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from training.atomic import ensure_dir, remove_stale_in, write_atomic
from training.errors import GeofmError

OWNER_FILE = ".geofm-raw.json"
SYNTHETIC_ORIGIN = "synthetic"


def data_origin(source: str, record: str) -> str:
    """What the raw folders of a data source hold: `synthetic`, or `zenodo record <id>`."""
    return SYNTHETIC_ORIGIN if source == SYNTHETIC_ORIGIN else f"zenodo record {record}"


class RawOwnershipError(GeofmError, RuntimeError):
    """A raw folder holds data this source did not write (another profile's, or a user's)."""


@dataclass(frozen=True)
class RawManifest:
    """What `geofm raw` wrote in one task folder."""

    origin: str
    complete: bool
    files: tuple[str, ...]


def read_owner(task_dir: Path) -> RawManifest | None:
    """The manifest of `task_dir`, or None when geofm wrote none there."""
    path = Path(task_dir) / OWNER_FILE
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return RawManifest(str(payload["origin"]), bool(payload["complete"]), tuple(payload["files"]))
    except (ValueError, KeyError, TypeError) as error:
        raise RawOwnershipError(f"{path} is damaged ({error}): move {task_dir} away and run `geofm raw` "
                                "again") from None


def _write_owner(task_dir: Path, manifest: RawManifest) -> None:
    payload = {"origin": manifest.origin, "complete": manifest.complete, "files": sorted(manifest.files)}
    write_atomic(Path(task_dir) / OWNER_FILE, json.dumps(payload, indent=1) + "\n")


def claim(task_dir: Path, origin: str) -> RawManifest | None:
    """The manifest of `task_dir` if `origin` may write there (None: the folder is absent or empty);
    raises RawOwnershipError when it holds another origin's data or files geofm did not write."""
    task_dir = Path(task_dir)
    manifest = read_owner(task_dir)
    if manifest is None:
        if task_dir.is_dir() and any(task_dir.iterdir()):
            raise RawOwnershipError(
                f"{task_dir} holds files geofm did not write (no {OWNER_FILE}), which `geofm raw` "
                f"({origin}) would mix with or replace: move them away, or give this profile its own "
                "data.raw_dir and data.prepared_dir")
        return None
    if manifest.origin != origin:
        raise RawOwnershipError(
            f"{task_dir} holds the {manifest.origin} data of another profile, and the active profile writes "
            f"{origin}: give one of the profiles its own data.raw_dir and data.prepared_dir (or move "
            f"{task_dir} away)")
    return manifest


def require_origin(task_dir: Path, origin: str) -> None:
    """Refuse to read `task_dir` unless `geofm raw` wrote it whole from `origin`."""
    manifest = read_owner(task_dir)
    if manifest is None or not manifest.complete:
        state = "was not written by `geofm raw`" if manifest is None else "was left incomplete"
        raise RawOwnershipError(f"{task_dir} {state}: run `geofm raw` first")
    if manifest.origin != origin:
        raise RawOwnershipError(f"{task_dir} holds {manifest.origin} data, but the active profile reads "
                                f"{origin}: run `geofm raw` with this profile (give it its own data.raw_dir)")


def record_owned(task_dir: Path, origin: str) -> None:
    """Record every file now in `task_dir` as written by `origin` (a folder moved in whole)."""
    files = tuple(sorted(path.relative_to(task_dir).as_posix() for path in Path(task_dir).rglob("*")
                         if path.is_file() and path.name != OWNER_FILE))
    _write_owner(task_dir, RawManifest(origin, True, files))


def _same_bytes(path: Path, content: bytes) -> bool:
    try:
        return path.stat().st_size == len(content) and path.read_bytes() == content
    except OSError:
        return False


def write_owned(task_dir: Path, origin: str, names: list[str], contents: Iterable[bytes]) -> Path:
    """Make `task_dir` hold `contents` under `names` (relative paths, in the same order) for `origin`:
    a file whose bytes are unchanged is left alone, files of an earlier run no longer written are removed,
    and no other file is touched. Killed half-way, the manifest says incomplete until a rerun completes it."""
    task_dir = Path(task_dir)
    previous = claim(task_dir, origin)
    ensure_dir(task_dir)
    old = set(previous.files) if previous else set()
    _remove_stale_below(task_dir)
    started = False
    for name, content in zip(names, contents, strict=True):
        path = task_dir / name
        if _same_bytes(path, content):
            continue
        if not started:
            _write_owner(task_dir, RawManifest(origin, False, tuple(old | set(names))))
            started = True
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, content, sweep=False)
    for name in sorted(old - set(names)):
        (task_dir / name).unlink(missing_ok=True)
        started = True
    if started or previous is None or not previous.complete:
        _write_owner(task_dir, RawManifest(origin, True, tuple(names)))
    return task_dir


def _remove_stale_below(task_dir: Path) -> None:
    for folder, _, _ in os.walk(task_dir):
        remove_stale_in(Path(folder))
