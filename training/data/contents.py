"""What a prepared task folder holds, recorded by `prepare` and checked before anything trains on it.

`contents.json` names the data's origin (`synthetic`, `zenodo record <id>`) and, per file, its size and
sha256. A training's identity includes it, so a training is reused only on the very bytes it was trained
on, and `verified_contents` refuses a folder whose files changed since (flipped bytes, a truncated array,
a rewritten header or label) with one sentence naming the file and the command that repairs it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from training.errors import GeofmError

CONTENTS_FILE = "contents.json"
_verified: dict[tuple[str, int, int, int], str] = {}
"""(path, size, mtime_ns, inode) -> sha256 of files hashed by this process: each is read once."""


class PreparedDataError(GeofmError, ValueError):
    """A prepared folder is not what `prepare` wrote (changed, missing, or of another data source)."""


def _sha256(path: Path) -> str:
    status = path.stat()
    key = (str(path), status.st_size, status.st_mtime_ns, status.st_ino)
    if key not in _verified:
        with path.open("rb") as handle:
            _verified[key] = hashlib.file_digest(handle, "sha256").hexdigest()
    return _verified[key]


def record_contents(folder: Path, origin: str) -> None:
    """Write `folder/contents.json`: `origin` and the size and sha256 of every other file in `folder`."""
    files = {path.name: {"bytes": path.stat().st_size, "sha256": _sha256(path)}
             for path in sorted(Path(folder).iterdir()) if path.is_file() and path.name != CONTENTS_FILE}
    payload = {"origin": origin, "files": files}
    (Path(folder) / CONTENTS_FILE).write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def verified_contents(folder: Path, task_key: str, origin: str) -> str:
    """The text of `folder/contents.json` once every file it lists has its recorded size and sha256 and the
    data come from `origin`; otherwise PreparedDataError naming the file and `geofm prepare`."""
    folder = Path(folder)
    repair = f"run `geofm prepare --task {task_key}` to write it again"
    path = folder / CONTENTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
        recorded = json.loads(text)
        files, recorded_origin = dict(recorded["files"]), str(recorded["origin"])
    except FileNotFoundError:
        raise PreparedDataError(f"{path} is missing (prepared by an older geofm, or not at all): "
                                f"{repair}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise PreparedDataError(f"{path} is damaged ({error}): {repair}") from None
    if recorded_origin != origin:
        raise PreparedDataError(f"{folder} holds {recorded_origin} data, but the active profile reads "
                                f"{origin}: run `geofm raw` and `geofm prepare --task {task_key}` with it")
    for name, expected in files.items():
        file = folder / name
        size = file.stat().st_size if file.is_file() else None
        if size != expected["bytes"]:
            found = "is missing" if size is None else f"has {size} bytes, not {expected['bytes']} as prepared"
            raise PreparedDataError(f"{file} {found}: {repair}")
        if _sha256(file) != expected["sha256"]:
            raise PreparedDataError(f"{file} changed since it was prepared (its sha256 differs): {repair}")
    return text
