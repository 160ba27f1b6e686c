"""SEG-Y surveys with their inline/crossline geometry, read from the trace headers (segyio).

The traces are placed on the grid their inline and crossline numbers name, so inline- and crossline-sorted
files and unsorted ones with a complete grid read the same. A file whose numbers do not form a grid is
refused, naming the header fields tried, unless the caller says it is one 2-D line (traces in file order).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import segyio

from training.survey.volumes import Axis, SurveyFileError, slice_cells

INLINE_BYTE = int(segyio.TraceField.INLINE_3D)
CROSSLINE_BYTE = int(segyio.TraceField.CROSSLINE_3D)


def _field_name(byte: int) -> str:
    try:
        return f"{segyio.TraceField(byte)} (byte {byte})"
    except ValueError:
        return f"byte {byte}"


@dataclass
class SegySurvey:
    """An open SEG-Y file; `grid[i, j]` is the trace number of inline i, crossline j (0-based)."""

    path: Path
    handle: Any
    grid: np.ndarray
    inline_numbers: np.ndarray
    crossline_numbers: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.grid.shape, len(self.handle.samples))

    @property
    def ndim(self) -> int:
        return 2 if self.grid.shape[0] == 1 else 3

    def _read(self, trace_numbers: np.ndarray) -> np.ndarray:
        first = int(trace_numbers[0])
        if np.array_equal(trace_numbers, np.arange(first, first + len(trace_numbers))):
            traces = self.handle.trace.raw[first:first + len(trace_numbers)]
        else:
            traces = np.stack([self.handle.trace[int(number)] for number in trace_numbers])
        return np.asarray(traces, dtype=np.float32).reshape(len(trace_numbers), -1)

    def section(self, axis: Axis, index: int) -> np.ndarray:
        return self._read(self.grid[slice_cells(axis, index)]).T

    def traces(self, cells: np.ndarray) -> np.ndarray:
        numbers = self.grid.reshape(-1)[cells]
        order = np.argsort(numbers)
        traces = np.empty((len(numbers), self.shape[2]), dtype=np.float32)
        traces[order] = self._read(numbers[order])
        return traces

    def close(self) -> None:
        self.handle.close()


def _grid(inlines: np.ndarray, crosslines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Trace numbers on the (inline, crossline) grid the header numbers span, or None if some cell is
    missing or taken twice."""
    inline_numbers, inline_index = np.unique(inlines, return_inverse=True)
    crossline_numbers, crossline_index = np.unique(crosslines, return_inverse=True)
    if len(inline_numbers) * len(crossline_numbers) != len(inlines):
        return None
    grid = np.full((len(inline_numbers), len(crossline_numbers)), -1, dtype=np.int64)
    grid[inline_index, crossline_index] = np.arange(len(inlines))
    return (grid, inline_numbers, crossline_numbers) if (grid >= 0).all() else None


def open_segy(
    path: Path,
    *,
    line_2d: bool = False,
    inline_byte: int = INLINE_BYTE,
    crossline_byte: int = CROSSLINE_BYTE,
) -> SegySurvey:
    """Open a SEG-Y survey. `line_2d`: read the traces in file order as one 2-D line, whatever their
    headers say; `inline_byte`/`crossline_byte`: where the inline and crossline numbers are."""
    try:
        handle = segyio.open(str(path), "r", ignore_geometry=True)
    except (RuntimeError, OSError, ValueError) as error:
        raise SurveyFileError(f"{path}: cannot read as SEG-Y ({error})") from error
    count = handle.tracecount
    if line_2d:
        return SegySurvey(path, handle, np.arange(count)[None], np.array([0]), np.arange(count))
    inlines, crosslines = (np.asarray(handle.attributes(byte)[:]) for byte in (inline_byte, crossline_byte))
    geometry = _grid(inlines, crosslines)
    if geometry is None:
        handle.close()
        pairs = len(set(zip(inlines.tolist(), crosslines.tolist(), strict=True)))
        raise SurveyFileError(
            f"{path}: the traces do not form an inline x crossline grid by the header fields "
            f"{_field_name(inline_byte)} and {_field_name(crossline_byte)}: {len(np.unique(inlines))} "
            f"inline and {len(np.unique(crosslines))} crossline numbers, {pairs} distinct pairs for "
            f"{count} traces. If the file is one 2-D line, read it as one (line_2d=True); if its numbers "
            "are at other bytes, give them (inline_byte=, crossline_byte=)"
        )
    return SegySurvey(path, handle, *geometry)
