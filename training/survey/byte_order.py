"""The byte order of a SEG-Y file, told from its binary header: the sample format code (bytes 3225-3226) is
a small known number in the file's own byte order and a large unknown one byte-swapped."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Endian = Literal["auto", "big", "little"]
ENDIANS: tuple[Endian, ...] = ("auto", "big", "little")
FORMAT_CODE_OFFSET = 3224
KNOWN_FORMAT_CODES = frozenset({1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 15, 16})
"""The SEG-Y rev 2 sample format codes."""


def detect_endian(path: Path) -> Literal["big", "little"]:
    """`little` when the format code reads as a known one only byte-swapped, else `big` (the standard's
    order, also for a file too short to hold a binary header: segyio then says what is wrong)."""
    with Path(path).open("rb") as stream:
        stream.seek(FORMAT_CODE_OFFSET)
        raw = stream.read(2)
    if len(raw) == 2 and int.from_bytes(raw, "big") not in KNOWN_FORMAT_CODES \
            and int.from_bytes(raw, "little") in KNOWN_FORMAT_CODES:
        return "little"
    return "big"


def resolve_endian(path: Path, endian: Endian) -> Literal["big", "little"]:
    """`endian`, or the file's own with `auto`."""
    return detect_endian(path) if endian == "auto" else endian
