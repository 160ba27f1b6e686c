"""A declared task's labelled sections, split by split, and their raw layout on disk.

`<raw_dir>/<task>/source.json` records where the sections came from (geometry, amplitude clip, the
sections of each split); `<raw_dir>/<task>/<split>/<name>.input.npy` holds a section's raw amplitudes
(samples, traces) and `<name>.labels.npy` its labels, `UNLABELLED` where nobody interpreted.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.data.layout import PREPARED_SPLITS
from training.errors import GeofmError

SOURCE_FILE = "source.json"


class DeclaredSourceError(GeofmError, ValueError):
    """A declared task's source cannot be used; the message names the file or key and what is wrong."""


@dataclass(frozen=True)
class Section:
    """One labelled section: its name (`inline-105`, a file's stem), raw amplitudes and labels."""

    name: str
    amplitudes: np.ndarray
    labels: np.ndarray


@dataclass
class DeclaredData:
    """Everything `raw` writes for a declared task: the sections of each split, and what to record about
    them (geometry, the amplitude clip, the blocks)."""

    splits: dict[str, list[Section]]
    record: dict = field(default_factory=dict)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def raw_files(data: DeclaredData) -> Iterator[tuple[str, bytes]]:
    """(relative name, bytes) of every raw file of a declared task, `source.json` last."""
    for split in PREPARED_SPLITS:
        for section in data.splits[split]:
            yield f"{split}/{section.name}.input.npy", _npy_bytes(section.amplitudes.astype(np.float32))
            yield f"{split}/{section.name}.labels.npy", _npy_bytes(section.labels.astype(np.uint8))
    names = {split: [section.name for section in data.splits[split]] for split in PREPARED_SPLITS}
    yield SOURCE_FILE, (json.dumps({**data.record, "sections": names}, indent=1) + "\n").encode()


def read_source_record(task_dir: Path) -> dict:
    """The `source.json` of a declared task's raw folder."""
    return json.loads((Path(task_dir) / SOURCE_FILE).read_text(encoding="utf-8"))


def read_sections(task_dir: Path, split: str) -> Iterator[Section]:
    """The raw sections of one split, in the order `source.json` lists them."""
    for name in read_source_record(task_dir)["sections"][split]:
        folder = Path(task_dir) / split
        yield Section(name, np.load(folder / f"{name}.input.npy"), np.load(folder / f"{name}.labels.npy"))
