"""Fetching the Zenodo record with zenodo-get: md5-verified, resumable, nothing half-written.

The record's checksums (zenodo-get's `md5sums.txt`) are kept in the raw folder, and every file there is
checked against them, whether this code or a user put it there. When the kept list vouches for every
file, nothing touches the network, so a hand-placed copy works offline. Otherwise the list is fetched
afresh (one attempt, so an unreachable Zenodo is reported at once) and only missing or corrupt files are
fetched, into a staging folder (zenodo-get writes in place); a file moves under its final name only after
its md5 matches.
"""

from __future__ import annotations

import glob
import os
import shutil
from collections.abc import Iterable
from fnmatch import fnmatch
from pathlib import Path

import zenodo_get
from zenodo_get.file_download import check_hash

from training.data.extract import archive_stem, archive_suffix, safe_extract
from training.data.raw_owner import claim, data_origin, record_owned
from training.errors import GeofmError
from training.tasks import TaskSpec, get_task

MANIFEST_NAME = "md5sums.txt"
STAGING_NAME = ".zenodo-staging"
ARCHIVES_DIR = "_archives"
EXTRACTED_DIR = "_extracted"
RETRY_PAUSE_SECONDS = 1.0
"""Pause before zenodo-get retries an interrupted transfer."""
BACKOFF_FACTOR = 0.5
"""zenodo-get's HTTP retries (connection errors, 429, 5xx) wait 0.5 s, 1 s, 2 s, ..."""

TASK_FOLDER_ALIASES: dict[str, tuple[str, ...]] = {
    "seam": ("seam", "seamai", "seismicface"),
    "salt": ("salt", "geobody"),
    "crater": ("crater",),
    "das": ("das",),
    "fault": ("fault", "deepfault"),
}
"""Lower-case name fragments that identify a task's folder in the record (ours and the authors' names)."""


class ZenodoUnavailableError(GeofmError, RuntimeError):
    """Zenodo cannot be reached; the message says how to go on without it."""


class ZenodoDownloadError(GeofmError, RuntimeError):
    """Zenodo answered, but a file could not be fetched or failed its md5 check."""


class TaskFolderNotFoundError(GeofmError, FileNotFoundError):
    """The record's archives hold no folder, or several, that can be a task's."""


def read_manifest(path: Path) -> dict[str, str]:
    """File name -> md5 from a `md5sums.txt` as zenodo-get writes it (`<md5>  <name>` per line)."""
    checksums = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        md5, separator, name = line.partition("  ")
        if not separator or len(md5) != 32:
            raise ValueError(f"{path}:{number}: expected '<md5>  <file name>', got {line!r}")
        checksums[name] = md5
    return checksums


def _unavailable(record_id: str, raw_dir: Path, error: Exception) -> ZenodoUnavailableError:
    return ZenodoUnavailableError(
        f"Zenodo cannot be reached to fetch record {record_id} ({error}): set `data.source: synthetic` in "
        f"params.yaml to use the synthetic data, or place the record's files with their {MANIFEST_NAME} "
        f"(`zenodo_get -m {record_id}`) in {raw_dir} by hand."
    )


def _list_checksums(record_id: str, raw_dir: Path, timeout: float) -> dict[str, str]:
    """Ask Zenodo for the record's checksums (zenodo-get's md5sums.txt) and keep them in `raw_dir`."""
    staging = raw_dir / STAGING_NAME
    # One attempt only: an unreachable Zenodo is reported at once instead of after ~16 s of retries.
    zenodo_get.download(
        record=record_id,
        output_dir=staging,
        md5=True,
        timeout=timeout,
        max_http_retries=0,
        verbosity=0,
        exceptions_on_failure=True,
    )
    os.replace(staging / MANIFEST_NAME, raw_dir / MANIFEST_NAME)
    return read_manifest(raw_dir / MANIFEST_NAME)


def _select(checksums: dict[str, str], file_glob: str | None) -> dict[str, str]:
    return {name: md5 for name, md5 in checksums.items() if file_glob is None or fnmatch(name, file_glob)}


def _is_verified(path: Path, md5: str) -> bool:
    expected, actual = check_hash(str(path), md5)
    return expected == actual


def _move_verified(staging: Path, raw_dir: Path, checksums: dict[str, str]) -> list[str]:
    """Move each staged file that passes its md5 check into `raw_dir`; return the names that did not."""
    failed = []
    for name, md5 in checksums.items():
        if _is_verified(staging / name, md5):
            os.replace(staging / name, raw_dir / name)
        else:
            failed.append(name)
    return failed


def _fetch_verified(
    record_id: str, checksums: dict[str, str], raw_dir: Path, retries: int, timeout: float
) -> None:
    """Fetch the files named in `checksums` into `raw_dir` through zenodo-get and a staging folder."""
    staging = raw_dir / STAGING_NAME
    try:
        zenodo_get.download(
            record=record_id,
            output_dir=staging,
            file_glob=tuple(glob.escape(name) for name in checksums),
            retry_attempts=retries,
            retry_pause=RETRY_PAUSE_SECONDS,
            max_http_retries=retries,
            backoff_factor=BACKOFF_FACTOR,
            timeout=timeout,
            existing_file_mode="overwrite",
            exceptions_on_failure=True,
            verbosity=1,
        )
    finally:
        # Files that arrived before a failure are kept, so a retry fetches only the rest.
        failed = _move_verified(staging, raw_dir, checksums)
    if failed:
        raise ZenodoDownloadError(f"Zenodo record {record_id} did not deliver {', '.join(failed)}")


def _sync_record(
    record_id: str, raw_dir: Path, file_glob: str | None, retries: int, timeout: float
) -> list[str]:
    """The names of the wanted record files, after fetching those missing or corrupt in `raw_dir`."""
    manifest = raw_dir / MANIFEST_NAME
    cached = _select(read_manifest(manifest), file_glob) if manifest.is_file() else {}
    verified = {name: md5 for name, md5 in cached.items() if _is_verified(raw_dir / name, md5)}
    if cached and verified == cached:
        return list(cached)
    wanted = _select(_list_checksums(record_id, raw_dir, timeout), file_glob)
    if not wanted:
        raise ZenodoDownloadError(f"Zenodo record {record_id} has no file matching {file_glob!r}")
    missing = {
        name: md5
        for name, md5 in wanted.items()
        if verified.get(name) != md5 and not _is_verified(raw_dir / name, md5)
    }
    if missing:
        _fetch_verified(record_id, missing, raw_dir, retries, timeout)
    return list(wanted)


def download_record(
    record_id: str,
    raw_dir: Path,
    *,
    retries: int = 3,
    timeout: float = 30.0,
    file_glob: str | None = None,
) -> list[Path]:
    """Make `raw_dir` hold the record's files (those matching `file_glob`), each md5-verified.

    Files already present and verified are kept; when the kept checksum list vouches for all of them,
    Zenodo is not contacted. The others are fetched, with `retries` retries of an interrupted transfer
    and of connection errors (exponential backoff). Returns the files in record order.
    """
    raw_dir = Path(raw_dir).resolve()
    staging = raw_dir / STAGING_NAME
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        names = _sync_record(record_id, raw_dir, file_glob, retries, timeout)
    except ZenodoDownloadError:
        raise
    except ConnectionError as error:
        raise _unavailable(record_id, raw_dir, error) from error
    except (RuntimeError, ValueError) as error:
        message = f"fetching Zenodo record {record_id} into {raw_dir} failed: {error}"
        raise ZenodoDownloadError(message) from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [raw_dir / name for name in names]


def _holds_task(folder: Path, task: TaskSpec) -> bool:
    """Whether `folder` has the task's train and valid input and label folders."""
    kinds = (task.input_dir, task.label_dir)
    return all((folder / split / kind).is_dir() for split in ("train", "valid") for kind in kinds)


def _dataset_folders(root: Path) -> list[Path]:
    """Every folder under `root` that has both a `train` and a `valid` subfolder."""
    found = []
    for folder, subfolders, _ in os.walk(root):
        if {"train", "valid"} <= set(subfolders):
            found.append(Path(folder))
            subfolders.clear()
    return sorted(found)


def _names_task(names: Iterable[str], task_key: str) -> bool:
    return any(alias in name.lower() for name in names for alias in TASK_FOLDER_ALIASES[task_key])


def _locate_task_folder(root: Path, task: TaskSpec, record_id: str) -> Path:
    """The one extracted folder holding `task`: named like the task, or else inside a folder named so."""
    folders = _dataset_folders(root)
    candidates = [folder for folder in folders if _holds_task(folder, task)]
    matches = [folder for folder in candidates if _names_task([folder.name], task.key)] or [
        folder for folder in candidates if _names_task(folder.relative_to(root).parts, task.key)
    ]
    if len(matches) == 1:
        return matches[0]
    found = ", ".join(str(folder.relative_to(root)) for folder in (matches or folders)) or "none"
    problem = "several folders could hold" if matches else "no folder holds"
    raise TaskFolderNotFoundError(
        f"Zenodo record {record_id}: {problem} task {task.key!r} (a folder named like "
        f"{'/'.join(TASK_FOLDER_ALIASES[task.key])} with train/ and valid/ {task.input_dir}/ and "
        f"{task.label_dir}/ folders); folders with train/ and valid/ found in its archives: {found}"
    )


def download_and_extract(
    record_id: str,
    raw_dir: Path,
    task_keys: Iterable[str],
    *,
    retries: int = 3,
    timeout: float = 30.0,
) -> dict[str, Path]:
    """Make `raw_dir/<task key>` hold each task's train and valid folders, fetched from the record.

    The record's archives go to `raw_dir/_archives` (verified, kept), are extracted under
    `raw_dir/_extracted`, and each task's folder, found by name, is moved to `raw_dir/<task key>` and
    recorded as the record's (`raw_owner`). Tasks already in place are left alone; when all are, nothing is
    downloaded. A task folder holding other data (synthetic, a user's) is refused, never replaced.
    """
    raw_dir = Path(raw_dir).resolve()
    tasks = [get_task(key) for key in task_keys]
    folders = {task.key: raw_dir / task.key for task in tasks}
    origin = data_origin("zenodo", record_id)
    owners = {task.key: claim(folders[task.key], origin) for task in tasks}
    missing = [task for task in tasks if not (owners[task.key] is not None and owners[task.key].complete
                                              and _holds_task(folders[task.key], task))]
    if not missing:
        return folders
    files = download_record(record_id, raw_dir / ARCHIVES_DIR, retries=retries, timeout=timeout)
    extracted = raw_dir / EXTRACTED_DIR
    shutil.rmtree(extracted, ignore_errors=True)
    try:
        for archive in files:
            if archive_suffix(archive) is not None:
                safe_extract(archive, extracted / archive_stem(archive))
        located = {task.key: _locate_task_folder(extracted, task, record_id) for task in missing}
        for key, folder in located.items():
            shutil.rmtree(folders[key], ignore_errors=True)
            folder.rename(folders[key])
            record_owned(folders[key], origin)
    finally:
        shutil.rmtree(extracted, ignore_errors=True)
    return folders
