"""Where each trace of a SEG-Y file sits: the inline x crossline grid its header numbers span, cells without a
trace kept as dead traces, duplicated positions refused or resolved, a file of one crossline read as one
line, and prestack data (several offsets per position, shot or CDP gathers) recognised and refused: the
models segment post-stack sections."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import segyio

from training.survey.volumes import SurveyFileError

Duplicates = Literal["refuse", "first", "last"]
DUPLICATES: tuple[Duplicates, ...] = ("refuse", "first", "last")
INLINE_BYTE = int(segyio.TraceField.INLINE_3D)
CROSSLINE_BYTE = int(segyio.TraceField.CROSSLINE_3D)
OFFSET_BYTE = int(segyio.TraceField.offset)
FIELD_RECORD_BYTE = int(segyio.TraceField.FieldRecord)
CDP_BYTE = int(segyio.TraceField.CDP)
MISSING = -1
"""The trace number of a grid cell no trace of the file sits on (a dead trace)."""
MIN_FILL = 0.25
"""The smallest share of the grid's cells that must hold a trace: below it the headers describe no grid."""
LINE_HINT = ("pass --line-2d if the file is one 2-D line, or --inline-byte and --crossline-byte if its "
             "inline and crossline numbers are at other header bytes")


@dataclass(frozen=True)
class TraceGrid:
    """`traces[i, j]`: the file's trace number at row i, column j (`MISSING` where none); `rows`/`columns`:
    what they are (`inline`/`crossline`, `crossline`/`inline` for one crossline, `line`/`trace`)."""

    traces: np.ndarray
    rows: str
    columns: str
    row_numbers: np.ndarray
    column_numbers: np.ndarray


def field_name(byte: int) -> str:
    try:
        return f"{segyio.TraceField(byte)} (byte {byte})"
    except ValueError:
        return f"byte {byte}"


def _header(handle: Any, byte: int) -> np.ndarray:
    return np.asarray(handle.attributes(byte)[:], dtype=np.int64)


def refuse_gathers(path: Path, handle: Any) -> None:
    """Refuse prestack traces: several offsets (header byte 37), each shared by several traces."""
    offsets = np.unique(_header(handle, OFFSET_BYTE))
    if len(offsets) < 2 or len(offsets) == handle.tracecount:
        return
    records = len(np.unique(_header(handle, FIELD_RECORD_BYTE)))
    cdps = len(np.unique(_header(handle, CDP_BYTE)))
    kind = (f"shot gathers of {records} field records" if records > 1
            else f"CDP gathers of {cdps} CDPs" if 1 < cdps < handle.tracecount else "offset gathers")
    raise SurveyFileError(
        f"{path}: prestack data, {kind} with {len(offsets)} offsets ({offsets[0]} to {offsets[-1]}): geofm "
        "segments post-stack sections, so stack the gathers (or write one offset to a file of its own) and "
        "predict that")


def _kept(cells: np.ndarray, duplicates: Duplicates) -> tuple[np.ndarray, np.ndarray]:
    """The occupied cells and the trace kept on each: its first or last trace in file order."""
    if duplicates == "last":
        taken, reversed_first = np.unique(cells[::-1], return_index=True)
        return taken, len(cells) - 1 - reversed_first
    taken, first = np.unique(cells, return_index=True)
    return taken, first


def _refuse_duplicates(path: Path, cells: np.ndarray, inlines: np.ndarray, crosslines: np.ndarray) -> None:
    taken, counts = np.unique(cells, return_counts=True)
    first = taken[counts > 1][0]
    holders = np.flatnonzero(cells == first)
    raise SurveyFileError(
        f"{path}: {(counts > 1).sum()} inline/crossline positions hold more than one trace (inline "
        f"{inlines[holders[0]]} crossline {crosslines[holders[0]]}: traces "
        f"{', '.join(map(str, holders + 1))} of the file); remove the duplicates, or pass --duplicates first "
        "or --duplicates last to keep one")


def line_grid(count: int) -> TraceGrid:
    """The traces in file order as one 2-D line."""
    return TraceGrid(np.arange(count)[None], "line", "trace", np.array([1]), np.arange(1, count + 1))


def trace_grid(path: Path, handle: Any, *, inline_byte: int = INLINE_BYTE,
               crossline_byte: int = CROSSLINE_BYTE, duplicates: Duplicates = "refuse") -> TraceGrid:
    """The grid of the file's inline and crossline numbers (see the module's docstring)."""
    inlines, crosslines = _header(handle, inline_byte), _header(handle, crossline_byte)
    inline_numbers, rows = np.unique(inlines, return_inverse=True)
    crossline_numbers, columns = np.unique(crosslines, return_inverse=True)
    cells = rows * len(crossline_numbers) + columns
    taken, kept = _kept(cells, duplicates)
    if len(taken) < len(cells):
        refuse_gathers(path, handle)
        if len(taken) == 1:
            raise SurveyFileError(
                f"{path}: all {len(cells)} traces have inline {inlines[0]} and crossline {crosslines[0]} in "
                f"{field_name(inline_byte)} and {field_name(crossline_byte)}: no 3-D geometry; {LINE_HINT}")
        if duplicates == "refuse":
            _refuse_duplicates(path, cells, inlines, crosslines)
    traces = np.full((len(inline_numbers), len(crossline_numbers)), MISSING, dtype=np.int64)
    traces.reshape(-1)[taken] = kept
    if len(taken) < MIN_FILL * traces.size:
        raise SurveyFileError(
            f"{path}: the {len(taken)} trace positions fill only {100 * len(taken) / traces.size:.0f}% of "
            f"the {len(inline_numbers)} inline x {len(crossline_numbers)} crossline grid of "
            f"{field_name(inline_byte)} and {field_name(crossline_byte)}, under the {100 * MIN_FILL:.0f}% a "
            f"survey needs; {LINE_HINT}")
    if traces.shape[0] > 1 and traces.shape[1] == 1:
        return TraceGrid(traces.T, "crossline", "inline", crossline_numbers, inline_numbers)
    return TraceGrid(traces, "inline", "crossline", inline_numbers, crossline_numbers)
