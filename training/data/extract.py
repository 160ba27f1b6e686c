"""Safe, idempotent extraction of the record's .zip and .tar(.gz/.bz2/.xz) archives.

Every member is checked before anything is written: no path may leave the target folder (absolute paths,
`..`, links pointing outside), tar special files are refused, and the total uncompressed size and the
compression ratio are bounded (archive bombs). The archive is extracted into a temporary folder next to
the target, which then replaces the target, so extracting twice gives the same tree and a failed
extraction leaves nothing half-written under the target's name.
"""

from __future__ import annotations

import gzip
import lzma
import posixpath
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from training.atomic import staged_dir
from training.errors import GeofmError

DEFAULT_MAX_TOTAL_BYTES = 64 * 1024**3
"""The whole record is ~14 GB uncompressed; an archive above 64 GiB is not one of its archives."""

DEFAULT_MAX_RATIO = 1000.0
"""Uncompressed bytes per archive byte. Deflate tops out near 1030:1, so only bombs (nested or
overlapping entries, xz/bz2 runs of zeros) exceed it; real seismic archives sit below 10:1."""


class ArchiveError(GeofmError, ValueError):
    """An archive that cannot be extracted: unreadable, or unsafe."""


class UnsafeArchiveError(ArchiveError):
    """An archive member that would escape the target folder, or an archive of absurd size."""


def _check_member_path(archive: Path, name: str) -> None:
    """Refuse a member name that is absolute or climbs out with `..`."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or PureWindowsPath(name).drive or ".." in path.parts:
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside the target folder")


def _check_link_target(archive: Path, member: tarfile.TarInfo) -> None:
    """Refuse a symlink or hard link whose target lies outside the target folder."""
    if member.issym():
        if posixpath.isabs(member.linkname):
            raise UnsafeArchiveError(
                f"{archive}: member {member.name!r} links to the absolute path {member.linkname!r}"
            )
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
    else:
        resolved = posixpath.normpath(member.linkname)
    if posixpath.isabs(resolved) or resolved == ".." or resolved.startswith("../"):
        raise UnsafeArchiveError(
            f"{archive}: member {member.name!r} links to {member.linkname!r}, outside the target folder"
        )


def _check_sizes(archive: Path, total_bytes: int, max_total_bytes: int, max_ratio: float) -> None:
    """Refuse an archive whose members add up to more than the limits allow."""
    if total_bytes > max_total_bytes:
        raise UnsafeArchiveError(
            f"{archive}: members add up to {total_bytes:,} bytes, above the limit of {max_total_bytes:,}"
        )
    ratio = total_bytes / max(archive.stat().st_size, 1)
    if ratio > max_ratio:
        raise UnsafeArchiveError(
            f"{archive}: compression ratio {ratio:,.0f}:1 is above the limit of {max_ratio:,.0f}:1 "
            "(an archive bomb?)"
        )


def _extract_zip(archive: Path, into: Path, max_total_bytes: int, max_ratio: float) -> None:
    with zipfile.ZipFile(archive) as bundle:
        members = bundle.infolist()
        for member in members:
            _check_member_path(archive, member.filename)
        # zipfile stops each member at its declared size (and checks its CRC), so the declared sizes bound
        # what is written.
        _check_sizes(archive, sum(member.file_size for member in members), max_total_bytes, max_ratio)
        bundle.extractall(into)


def _checked_tar_members(
    archive: Path, tar: tarfile.TarFile, max_total_bytes: int, max_ratio: float
) -> Iterator[tarfile.TarInfo]:
    """The tar's members, each checked as it is read, so a bomb stops at the first member over a limit."""
    total_bytes = 0
    for member in tar:
        _check_member_path(archive, member.name)
        if member.issym() or member.islnk():
            _check_link_target(archive, member)
        elif not (member.isreg() or member.isdir()):
            raise UnsafeArchiveError(f"{archive}: member {member.name!r} is a device, fifo or special file")
        total_bytes += member.size
        _check_sizes(archive, total_bytes, max_total_bytes, max_ratio)
        yield member


def _extract_tar(archive: Path, into: Path, max_total_bytes: int, max_ratio: float) -> None:
    with tarfile.open(archive, "r:*") as tar:
        members = list(_checked_tar_members(archive, tar, max_total_bytes, max_ratio))
        # The "data" filter repeats the checks above inside tarfile itself (Python >= 3.10.12).
        filter_kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(into, members=members, **filter_kwargs)


CORRUPT_ARCHIVE_ERRORS = (
    zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError
)
"""What zipfile, tarfile and the decompressors raise for a damaged or truncated archive."""

ARCHIVE_EXTRACTORS: dict[str, Callable[[Path, Path, int, float], None]] = {
    ".zip": _extract_zip,
    ".tar": _extract_tar,
    ".tar.gz": _extract_tar,
    ".tgz": _extract_tar,
    ".tar.bz2": _extract_tar,
    ".tbz2": _extract_tar,
    ".tar.xz": _extract_tar,
    ".txz": _extract_tar,
}


def archive_suffix(path: Path) -> str | None:
    """The archive suffix of `path` known to `ARCHIVE_EXTRACTORS` (".tar.gz", ".zip", ...), or None."""
    name = path.name.lower()
    matches = [suffix for suffix in ARCHIVE_EXTRACTORS if name.endswith(suffix)]
    return max(matches, key=len) if matches else None


def archive_stem(path: Path) -> str:
    """The archive's name without its archive suffix: `seam.tar.gz` -> `seam`."""
    suffix = archive_suffix(path)
    return path.name[: -len(suffix)] if suffix else path.name


def safe_extract(
    archive: Path,
    target: Path,
    *,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> list[Path]:
    """Extract `archive` so that `target` holds exactly its tree; return the extracted files, sorted.

    `target` is owned by the archive: an existing `target` is replaced once the new tree is complete.
    """
    archive, target = Path(archive), Path(target)
    suffix = archive_suffix(archive)
    if suffix is None:
        raise ArchiveError(f"{archive}: not a known archive type (known: {', '.join(ARCHIVE_EXTRACTORS)})")
    with staged_dir(target) as staging:
        try:
            ARCHIVE_EXTRACTORS[suffix](archive, staging, max_total_bytes, max_ratio)
        except CORRUPT_ARCHIVE_ERRORS as error:
            # the first line only: tarfile lists every decompressor it tried on lines of their own
            reason = (str(error).splitlines() or [type(error).__name__])[0].rstrip(":")
            raise ArchiveError(f"{archive}: not a readable {suffix} archive ({reason})") from error
    return sorted(path for path in target.rglob("*") if path.is_file())
