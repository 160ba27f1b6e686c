"""Fetching the record through zenodo-get's real download path, against a stand-in Zenodo on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import random
import socket
import tarfile
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from zenodo_standin import ZenodoStandin, route_zenodo_to

from training.data import zenodo
from training.data.zenodo import (
    MANIFEST_NAME,
    STAGING_NAME,
    ZenodoDownloadError,
    ZenodoUnavailableError,
    download_and_extract,
    download_record,
)

RECORD = "12798750"


def _task_tree(folder: str, input_dir: str, label_dir: str, seed: int) -> dict[str, bytes]:
    """A tiny task folder in the record's layout: two samples per split."""
    rng = random.Random(seed)
    return {
        f"{folder}/{split}/{kind}/{index}.dat": rng.randbytes(256)
        for split in ("train", "valid")
        for kind in (input_dir, label_dir)
        for index in range(2)
    }


def _zip_bytes(tree: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in tree.items():
            bundle.writestr(name, content)
    return buffer.getvalue()


def _tar_gz_bytes(tree: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, content in tree.items():
            member = tarfile.TarInfo(name)
            member.size = len(content)
            bundle.addfile(member, io.BytesIO(content))
    return buffer.getvalue()


SEAM_TREE = _task_tree("seismicFace", "input", "target", seed=1)
FAULT_TREE = _task_tree("deepfault", "image", "label", seed=2)
RECORD_FILES = {
    "seismicFace.zip": _zip_bytes(SEAM_TREE),
    "deepfault.tar.gz": _tar_gz_bytes(FAULT_TREE),
    "README.md": b"# stand-in record\n",
}


@pytest.fixture
def standin() -> Iterator[ZenodoStandin]:
    with ZenodoStandin(RECORD, RECORD_FILES) as server, route_zenodo_to(server.port):
        yield server


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _file_requests(standin: ZenodoStandin) -> list[str]:
    return [path for path in standin.requests if "/files/" in path]


def test_download_lands_every_file_verified(standin: ZenodoStandin, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    files = download_record(RECORD, raw)
    assert [path.name for path in files] == list(RECORD_FILES)
    for path in files:
        assert path.read_bytes() == RECORD_FILES[path.name]
    manifest = (raw / MANIFEST_NAME).read_text()
    for name, content in RECORD_FILES.items():
        assert f"{hashlib.md5(content).hexdigest()}  {name}" in manifest
    assert not (raw / STAGING_NAME).exists()


def test_file_glob_fetches_only_matching_files(standin: ZenodoStandin, tmp_path: Path) -> None:
    files = download_record(RECORD, tmp_path / "raw", file_glob="*.zip")
    assert [path.name for path in files] == ["seismicFace.zip"]
    assert _file_requests(standin) == [f"/api/records/{RECORD}/files/seismicFace.zip/content"]


def test_md5_mismatch_names_the_file_and_leaves_nothing_under_its_name(
    standin: ZenodoStandin, tmp_path: Path
) -> None:
    standin.wrong_md5.add("deepfault.tar.gz")
    raw = tmp_path / "raw"
    with pytest.raises(ZenodoDownloadError, match=r"checksum error for deepfault\.tar\.gz"):
        download_record(RECORD, raw)
    assert not (raw / "deepfault.tar.gz").exists()
    assert not (raw / STAGING_NAME).exists()
    assert (raw / "seismicFace.zip").read_bytes() == RECORD_FILES["seismicFace.zip"]


def test_connection_dropped_once_is_retried(standin: ZenodoStandin, tmp_path: Path) -> None:
    standin.faults["seismicFace.zip"] = ["drop"]
    files = download_record(RECORD, tmp_path / "raw", retries=2)
    assert files[0].read_bytes() == RECORD_FILES["seismicFace.zip"]
    assert standin.file_gets("seismicFace.zip") == 2


def test_connection_dropped_every_time_fails_clearly(standin: ZenodoStandin, tmp_path: Path) -> None:
    standin.faults["seismicFace.zip"] = ["drop"] * 100
    raw = tmp_path / "raw"
    with pytest.raises(ZenodoDownloadError, match=r"seismicFace\.zip after 1 retries"):
        download_record(RECORD, raw, retries=1)
    assert standin.file_gets("seismicFace.zip") == 2
    assert not (raw / "seismicFace.zip").exists()
    assert not (raw / STAGING_NAME).exists()


@pytest.mark.parametrize("fault", ["503", "429", "reset"])
def test_a_transient_http_failure_is_retried_by_the_http_layer(
    standin: ZenodoStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """The one transfer retry goes to the dropped connection; the 503, 429 or reset answering that retry
    must be absorbed by zenodo-get's HTTP retries (`max_http_retries`), or the download fails."""
    monkeypatch.setattr(zenodo, "RETRY_PAUSE_SECONDS", 0.0)
    standin.faults["seismicFace.zip"] = ["drop", fault]
    files = download_record(RECORD, tmp_path / "raw", retries=1, file_glob="*.zip")
    assert files[0].read_bytes() == RECORD_FILES["seismicFace.zip"]
    assert standin.file_gets("seismicFace.zip") == 3
    assert standin.faults["seismicFace.zip"] == []


def test_second_call_fetches_only_what_is_missing_or_corrupt(standin: ZenodoStandin, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    download_record(RECORD, raw)
    standin.requests.clear()
    download_record(RECORD, raw)
    assert standin.requests == []

    (raw / "README.md").unlink()
    (raw / "deepfault.tar.gz").write_bytes(b"truncated")
    files = download_record(RECORD, raw)
    assert sorted(_file_requests(standin)) == [
        f"/api/records/{RECORD}/files/README.md/content",
        f"/api/records/{RECORD}/files/deepfault.tar.gz/content",
    ]
    assert {path.name: path.read_bytes() for path in files} == RECORD_FILES


def test_hand_placed_files_are_verified_not_fetched(standin: ZenodoStandin, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "seismicFace.zip").write_bytes(RECORD_FILES["seismicFace.zip"])
    (raw / "README.md").write_bytes(b"a different readme\n")
    download_record(RECORD, raw)
    assert standin.file_gets("seismicFace.zip") == 0
    assert standin.file_gets("README.md") == 1
    assert (raw / "README.md").read_bytes() == RECORD_FILES["README.md"]


def test_offline_fails_fast_with_advice(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    with route_zenodo_to(_closed_port()):
        started = time.perf_counter()
        with pytest.raises(ZenodoUnavailableError) as caught:
            download_record(RECORD, raw)
        elapsed = time.perf_counter() - started
    message = str(caught.value)
    assert message.startswith("Zenodo cannot be reached")
    assert "data.source: synthetic" in message
    assert str(raw.resolve()) in message
    assert elapsed < 5.0, f"offline failure took {elapsed:.1f} s"
    assert not (raw / MANIFEST_NAME).exists()


def test_offline_hand_placed_files_with_their_checksums_verify(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, content in RECORD_FILES.items():
        (raw / name).write_bytes(content)
    (raw / MANIFEST_NAME).write_text(
        "".join(f"{hashlib.md5(content).hexdigest()}  {name}\n" for name, content in RECORD_FILES.items())
    )
    with route_zenodo_to(_closed_port()):
        files = download_record(RECORD, raw)
        (raw / "README.md").write_bytes(b"edited by hand\n")
        with pytest.raises(ZenodoUnavailableError, match="Zenodo cannot be reached"):
            download_record(RECORD, raw)
    assert [path.name for path in files] == list(RECORD_FILES)


def test_download_and_extract_places_each_task_folder(standin: ZenodoStandin, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    folders = download_and_extract(RECORD, raw, ["seam", "fault"])
    assert folders == {"seam": raw.resolve() / "seam", "fault": raw.resolve() / "fault"}
    for tree, folder, key in ((SEAM_TREE, "seismicFace", "seam"), (FAULT_TREE, "deepfault", "fault")):
        for name, content in tree.items():
            assert (raw / key / Path(name).relative_to(folder)).read_bytes() == content
    assert sorted(path.name for path in raw.iterdir()) == ["_archives", "fault", "seam"]

    standin.requests.clear()
    assert download_and_extract(RECORD, raw, ["seam", "fault"]) == folders
    assert standin.requests == []


def test_download_and_extract_names_a_task_it_cannot_find(standin: ZenodoStandin, tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    with pytest.raises(FileNotFoundError, match=r"task 'salt'.*found in its archives: .*seismicFace"):
        download_and_extract(RECORD, raw, ["seam", "salt"])
    assert not (raw / "seam").exists()
    assert not (raw / "_extracted").exists()
