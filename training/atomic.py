"""Files and folders that appear whole or not at all: written as a hidden sibling, then renamed into place.

Each temporary sibling is named `.<name>.<kind>-<host>-<pid>-<token>`, so that a later writer can tell one
left behind by a killed process (this host, process gone) from one still being written, and remove it.
Temporary files and folders get the process's normal permissions (its umask), like any file it writes.
"""

from __future__ import annotations

import filecmp
import os
import re
import secrets
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from training.errors import GeofmError

STAGING, REPLACED, TEMPORARY = "staging", "replaced", "tmp"
"""Kinds of temporary siblings: a folder being built, a folder being replaced, a file being written."""


class OutputNotWritableError(GeofmError, OSError):
    """An output cannot be written where it belongs (a read-only or missing folder, a full disk)."""


def _not_writable(target: Path, error: OSError) -> OutputNotWritableError:
    return OutputNotWritableError(
        f"cannot write {target}: {error.strerror or error} in folder {target.parent}"
    )


def _sibling(target: Path, kind: str) -> Path:
    """A fresh temporary sibling name of `target`, owned by this process."""
    return target.with_name(
        f".{target.name}.{kind}-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
    )


def _is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def stale_siblings(folder: Path) -> list[tuple[Path, str, str]]:
    """The temporary files and folders in `folder` whose writer, a process of this host, has ended: each
    with the name of the output it was for and its kind. (Another host's are never known to be stale.)"""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    pattern = re.compile(
        rf"\.(?P<target>.+)\.(?P<kind>{STAGING}|{REPLACED}|{TEMPORARY})-"
        rf"{re.escape(socket.gethostname())}-(?P<pid>\d+)-[0-9a-f]{{8}}"
    )
    found = []
    for entry in folder.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and _is_gone(int(match["pid"])):
            found.append((entry, match["target"], match["kind"]))
    return sorted(found)


def remove_stale_staging(target: Path) -> list[Path]:
    """Remove the temporary siblings of `target` left by killed processes; returns what was removed.

    A process killed between the two renames of `replace_dir` leaves no `target` and the previous result in
    its `replaced` sibling: that result is put back first, so `target` is never lost."""
    target = Path(target)
    return _remove_stale(target.parent, only=target.name)


def remove_stale_in(folder: Path) -> list[Path]:
    """`remove_stale_staging` for every output in `folder`: what a stage calls when it starts."""
    return _remove_stale(Path(folder), only=None)


def _remove_stale(folder: Path, only: str | None) -> list[Path]:
    removed = []
    for path, name, kind in stale_siblings(folder):
        if only is not None and name != only:
            continue
        previous, output = path / name, folder / name
        if kind == REPLACED and previous.is_dir() and not output.exists():
            try:
                previous.rename(output)
            except OSError:  # another process restored or wrote the output meanwhile
                pass
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def ensure_dir(folder: Path) -> None:
    """Create `folder` (and its parents) if missing; an OutputNotWritableError naming it if it cannot be."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _not_writable(Path(folder), error) from error


def _make_sibling_dir(target: Path, kind: str) -> Path:
    folder = _sibling(target, kind)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir()  # mode 0o777 less the umask, unlike mkdtemp's 0o700
    except OSError as error:
        raise _not_writable(target, error) from error
    return folder


@contextmanager
def staged_dir(target: Path, *, keep_identical: bool = False) -> Iterator[Path]:
    """Yield an empty staging folder beside `target`; on success it replaces `target`, on error it is removed
    and `target` (a previous good result) stays untouched. Stale siblings of killed writers go first.
    `keep_identical`: a `target` holding the very same files, byte for byte, is kept as it is."""
    target = Path(target)
    remove_stale_staging(target)
    staging = _make_sibling_dir(target, STAGING)
    try:
        yield staging
        if not (keep_identical and same_files(staging, target)):
            replace_dir(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def same_files(first: Path, second: Path) -> bool:
    """Whether two folders hold the same file names with the same bytes."""
    def names(folder: Path) -> set[str]:
        return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}

    if not second.is_dir() or names(first) != names(second):
        return False
    return all(filecmp.cmp(first / name, second / name, shallow=False) for name in names(first))


def replace_dir(staged: Path, target: Path) -> None:
    """Put the folder `staged` in place of `target`, replacing whatever `target` held."""
    if not target.exists():
        _rename(staged, target, target)
        return
    previous = _make_sibling_dir(target, REPLACED)
    try:
        _rename(target, previous / target.name, target)
    except OutputNotWritableError:
        previous.rmdir()
        raise
    try:
        _rename(staged, target, target)
    except OutputNotWritableError:
        (previous / target.name).rename(target)
        previous.rmdir()
        raise
    shutil.rmtree(previous)


def _rename(source: Path, destination: Path, target: Path) -> None:
    try:
        source.rename(destination)
    except OSError as error:
        raise _not_writable(target, error) from error


def temporary_file_for(target: Path) -> Path:
    """A fresh temporary sibling name for a file written in place of `target`, after removing the ones
    killed writers left: a writer that renames it into place itself (e.g. a memory-mapped array)."""
    remove_stale_staging(Path(target))
    return _sibling(Path(target), TEMPORARY)


def write_atomic_with(path: Path, write: Callable[[BinaryIO], object], *, sweep: bool = True) -> None:
    """Call `write` on a new temporary sibling of `path`, flush it to disk, then rename it into place: `path`
    is always either its old or its complete new content. On any error the temporary file is removed.
    `sweep=False` skips the removal of stale siblings (a writer of many files sweeps their folder once)."""
    path = Path(path)
    if sweep:
        remove_stale_staging(path)
    temporary = _sibling(path, TEMPORARY)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = temporary.open("xb")  # mode 0o666 less the umask, unlike mkstemp's 0o600
    except OSError as error:
        raise _not_writable(path, error) from error
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_atomic(path: Path, content: str | bytes, *, sweep: bool = True) -> None:
    """Write `content` (text as UTF-8) to `path` through `write_atomic_with`."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    write_atomic_with(path, lambda handle: handle.write(data), sweep=sweep)
