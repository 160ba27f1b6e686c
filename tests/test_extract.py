"""Safe extraction: slips, absolute paths, outside links, special files and bombs are refused by name."""

from __future__ import annotations

import io
import re
import tarfile
import zipfile
from pathlib import Path

import pytest

from training.data.extract import ArchiveError, UnsafeArchiveError, archive_stem, safe_extract
from training.errors import GeofmError

TREE = {
    "task/train/input/0.dat": bytes(range(256)) * 4,
    "task/train/target/0.dat": b"\x00\x01" * 100,
    "task/valid/input/0.dat": b"\x7f" * 300,
}


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, content in members.items():
            # A ZipInfo keeps the name verbatim (ZipFile.write would strip a leading "/").
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, content)
    return path


def _write_tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w") -> Path:
    with tarfile.open(path, mode) as bundle:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                bundle.addfile(member)
            else:
                name, content = member
                info = tarfile.TarInfo(name)
                info.size = len(content)
                bundle.addfile(info, io.BytesIO(content))
    return path


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _tree(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


def test_zip_extracts_its_tree_and_again_gives_the_same_tree(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "task.zip", TREE)
    target = tmp_path / "out"
    files = safe_extract(archive, target)
    assert files == sorted(target / name for name in TREE)
    assert _tree(target) == TREE

    (target / "stale.txt").write_text("left over")
    assert safe_extract(archive, target) == files
    assert _tree(target) == TREE
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out", "task.zip"]


@pytest.mark.parametrize(
    ("suffix", "mode"), [(".tar", "w"), (".tar.gz", "w:gz"), (".tar.bz2", "w:bz2"), (".tar.xz", "w:xz")]
)
def test_tar_archives_extract(tmp_path: Path, suffix: str, mode: str) -> None:
    archive = _write_tar(tmp_path / f"task{suffix}", list(TREE.items()), mode)
    assert archive_stem(archive) == "task"
    target = tmp_path / "out"
    safe_extract(archive, target)
    safe_extract(archive, target)
    assert _tree(target) == TREE


def test_tar_link_inside_the_target_is_kept(tmp_path: Path) -> None:
    members = [("data/a.dat", b"abc"), _link("data/b.dat", "a.dat", tarfile.SYMTYPE)]
    target = tmp_path / "out"
    safe_extract(_write_tar(tmp_path / "links.tar", members), target)
    assert (target / "data" / "b.dat").is_symlink()
    assert (target / "data" / "b.dat").read_bytes() == b"abc"


@pytest.mark.parametrize("name", ["../evil.txt", "task/../../evil.txt", "/tmp/evil.txt", "C:/evil.txt"])
def test_zip_member_escaping_the_target_is_refused(tmp_path: Path, name: str) -> None:
    archive = _write_zip(tmp_path / "slip.zip", {"task/ok.dat": b"ok", name: b"evil"})
    target = tmp_path / "nested" / "out"
    with pytest.raises(UnsafeArchiveError, match=rf"slip\.zip: member '{name}' would be written outside"):
        safe_extract(archive, target)
    assert not target.exists()
    assert list((tmp_path / "nested").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    ("member", "message"),
    [
        (("../evil.txt", b"evil"), "member '../evil.txt' would be written outside"),
        (_link("task/passwd", "/etc/passwd", tarfile.SYMTYPE), "member 'task/passwd' links to the absolute"),
        (_link("task/up", "../../outside", tarfile.SYMTYPE), "member 'task/up' links to '../../outside'"),
        (_link("task/hard", "../outside", tarfile.LNKTYPE), "member 'task/hard' links to '../outside'"),
        (_link("task/pipe", "", tarfile.FIFOTYPE), "member 'task/pipe' is a device, fifo or special file"),
    ],
)
def test_tar_member_escaping_the_target_is_refused(
    tmp_path: Path, member: tarfile.TarInfo | tuple[str, bytes], message: str
) -> None:
    archive = _write_tar(tmp_path / "slip.tar.gz", [("task/ok.dat", b"ok"), member], "w:gz")
    target = tmp_path / "out"
    with pytest.raises(UnsafeArchiveError, match=rf"slip\.tar\.gz: {message}"):
        safe_extract(archive, target)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["slip.tar.gz"]


def test_failed_extraction_leaves_the_previous_tree(tmp_path: Path) -> None:
    target = tmp_path / "out"
    safe_extract(_write_zip(tmp_path / "good.zip", TREE), target)
    with pytest.raises(UnsafeArchiveError):
        safe_extract(_write_zip(tmp_path / "bad.zip", {"../evil": b"x"}), target)
    assert _tree(target) == TREE


def test_total_size_limit(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "big.zip", TREE)
    total = sum(len(content) for content in TREE.values())
    with pytest.raises(UnsafeArchiveError, match=rf"big\.zip: members add up to {total:,} bytes, above"):
        safe_extract(archive, tmp_path / "out", max_total_bytes=1000)
    assert not (tmp_path / "out").exists()


def test_compression_bomb_is_refused_with_default_limits(tmp_path: Path) -> None:
    archive = _write_tar(tmp_path / "bomb.tar.xz", [("zeros.dat", bytes(16 * 1024**2))], "w:xz")
    with pytest.raises(UnsafeArchiveError, match=r"bomb\.tar\.xz: compression ratio .* above the limit"):
        safe_extract(archive, tmp_path / "out")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bomb.tar.xz"]


def test_compression_ratio_limit_applies_to_zip(tmp_path: Path) -> None:
    archive = _write_zip(tmp_path / "zeros.zip", {"zeros.dat": bytes(100_000)})
    with pytest.raises(UnsafeArchiveError, match=r"zeros\.zip: compression ratio"):
        safe_extract(archive, tmp_path / "out", max_ratio=20)
    safe_extract(archive, tmp_path / "ok")
    assert _tree(tmp_path / "ok") == {"zeros.dat": bytes(100_000)}


def test_unknown_archive_type_is_named(tmp_path: Path) -> None:
    path = tmp_path / "data.rar"
    path.write_bytes(b"not an archive we know")
    with pytest.raises(ValueError, match=r"data\.rar: not a known archive type"):
        safe_extract(path, tmp_path / "out")


@pytest.mark.parametrize("name", ["task.zip", "task.tar.gz", "task.tar.bz2", "task.tar.xz"])
def test_damaged_archive_is_one_sentence_naming_it(tmp_path: Path, name: str) -> None:
    mode = {"task.tar.gz": "w:gz", "task.tar.bz2": "w:bz2", "task.tar.xz": "w:xz"}.get(name)
    path = tmp_path / name
    if mode is None:
        _write_zip(path, TREE)
    else:
        _write_tar(path, list(TREE.items()), mode)
    target = tmp_path / "out"
    safe_extract(path, target)
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # a download cut in half
    with pytest.raises(ArchiveError, match=rf"{re.escape(name)}: not a readable \.") as caught:
        safe_extract(path, target)
    assert "\n" not in str(caught.value) and isinstance(caught.value, GeofmError)
    assert _tree(target) == TREE  # the previous extraction stays whole
