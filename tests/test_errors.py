"""Every error a user can cause in the data layer is a `GeofmError` (which the CLI catches once), keeps the
built-in type it had, and says in one line what is at fault."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from zenodo_standin import ZenodoStandin, route_zenodo_to

from training.atomic import OutputNotWritableError
from training.data import zenodo
from training.data.extract import ArchiveError, UnsafeArchiveError
from training.data.splits import SplitError
from training.data.validate import DataValidationError
from training.data.zenodo import (
    TaskFolderNotFoundError,
    ZenodoDownloadError,
    ZenodoUnavailableError,
    download_record,
)
from training.errors import GeofmError
from training.locking import CheckpointLockedError
from training.models.weights import WeightLoadError

RECORD = "12798750"
FILES = {"seismicFace.zip": b"a zip, as far as the md5 goes\n"}


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (DataValidationError, ValueError),
        (SplitError, ValueError),
        (ArchiveError, ValueError),
        (UnsafeArchiveError, ValueError),
        (OutputNotWritableError, OSError),
        (ZenodoUnavailableError, RuntimeError),
        (ZenodoDownloadError, RuntimeError),
        (TaskFolderNotFoundError, FileNotFoundError),
        (WeightLoadError, RuntimeError),
        (CheckpointLockedError, TimeoutError),
    ],
)
def test_user_errors_are_geofm_errors_and_keep_their_builtin(error: type, builtin: type) -> None:
    assert issubclass(error, GeofmError) and issubclass(error, builtin)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_zenodo_unreachable_is_one_sentence(tmp_path: Path) -> None:
    with route_zenodo_to(_closed_port()), pytest.raises(GeofmError) as caught:
        download_record(RECORD, tmp_path / "raw")
    message = str(caught.value)
    assert isinstance(caught.value, ZenodoUnavailableError)
    assert message.startswith(f"Zenodo cannot be reached to fetch record {RECORD}") and "\n" not in message


def test_checksum_error_after_retries_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zenodo, "RETRY_PAUSE_SECONDS", 0.0)
    with ZenodoStandin(RECORD, FILES) as server, route_zenodo_to(server.port):
        server.wrong_md5.add("seismicFace.zip")
        with pytest.raises(GeofmError) as caught:
            download_record(RECORD, tmp_path / "raw", retries=1)
    message = str(caught.value)
    assert isinstance(caught.value, ZenodoDownloadError)
    assert "checksum error for seismicFace.zip" in message and str(tmp_path / "raw") in message
    assert "\n" not in message
