"""SEG-Y surveys read by their trace headers (segyio), in either byte order.

The traces are placed on the grid their inline and crossline numbers name (`segy_grid`): inline- and
crossline-sorted files and unsorted ones read the same, missing traces are dead traces, a file of one
inline or one crossline is one 2-D line along it, and prestack data is refused. `line_2d` reads the traces
in file order as one line instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import segyio

from training.survey.byte_order import Endian, resolve_endian
from training.survey.geometry import Geometry
from training.survey.segy_grid import (
    CROSSLINE_BYTE,
    INLINE_BYTE,
    Duplicates,
    TraceGrid,
    line_grid,
    refuse_gathers,
    trace_grid,
)
from training.survey.volumes import Axis, SurveyFileError, slice_cells


@dataclass
class SegySurvey:
    """An open SEG-Y file; `grid[i, j]` is the trace number at row i, column j (0-based; -1: none)."""

    path: Path
    handle: Any
    grid: np.ndarray
    geometry: Geometry
    endian: str

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.grid.shape, len(self.handle.samples))

    @property
    def ndim(self) -> int:
        return 2 if self.grid.shape[0] == 1 else 3

    @property
    def dead(self) -> np.ndarray | None:
        missing = self.grid < 0
        return missing if missing.any() else None

    def _read(self, trace_numbers: np.ndarray) -> np.ndarray:
        """The traces of the file's `trace_numbers` (-1: a dead trace, zeros), (len, samples) float32."""
        traces = np.zeros((len(trace_numbers), self.shape[2]), dtype=np.float32)
        live = np.flatnonzero(trace_numbers >= 0)
        order = live[np.argsort(trace_numbers[live])]
        numbers = trace_numbers[order]
        if len(numbers) and np.array_equal(numbers, np.arange(numbers[0], numbers[0] + len(numbers))):
            traces[order] = np.asarray(self.handle.trace.raw[int(numbers[0]):int(numbers[-1]) + 1],
                                       dtype=np.float32).reshape(len(numbers), -1)
        else:
            for place, number in zip(order, numbers, strict=True):
                traces[place] = self.handle.trace[int(number)]
        return traces

    def section(self, axis: Axis, index: int) -> np.ndarray:
        return self._read(self.grid[slice_cells(axis, index)]).T

    def traces(self, cells: np.ndarray) -> np.ndarray:
        return self._read(self.grid.reshape(-1)[cells])

    def close(self) -> None:
        self.handle.close()


def _geometry(grid: TraceGrid, samples: np.ndarray) -> Geometry:
    return Geometry(rows=grid.rows, columns=grid.columns, row_numbers=grid.row_numbers,
                    column_numbers=grid.column_numbers, samples=np.asarray(samples), sample_unit="ms")


def open_segy(
    path: Path,
    *,
    line_2d: bool = False,
    inline_byte: int = INLINE_BYTE,
    crossline_byte: int = CROSSLINE_BYTE,
    endian: Endian = "auto",
    duplicates: Duplicates = "refuse",
) -> SegySurvey:
    """Open a SEG-Y survey. `line_2d`: the traces in file order as one 2-D line; `inline_byte`/
    `crossline_byte`: where the inline and crossline numbers are; `endian`: the byte order (`auto`: from
    the binary header); `duplicates`: a position held by several traces is refused, or its first or last
    trace kept."""
    order = resolve_endian(path, endian)
    try:
        handle = segyio.open(str(path), "r", ignore_geometry=True, endian=order)
    except IndexError:  # segyio reads the first trace's header on opening
        raise SurveyFileError(f"{path}: holds SEG-Y headers but no traces: nothing to predict") from None
    except (RuntimeError, OSError, ValueError) as error:
        raise SurveyFileError(f"{path}: cannot read as {order}-endian SEG-Y ({error}); if the byte order is "
                              "not that, give it with --endian") from error
    try:
        if line_2d:
            refuse_gathers(path, handle)
            grid = line_grid(handle.tracecount)
        else:
            grid = trace_grid(path, handle, inline_byte=inline_byte, crossline_byte=crossline_byte,
                              duplicates=duplicates)
    except BaseException:
        handle.close()
        raise
    return SegySurvey(path, handle, grid.traces, _geometry(grid, handle.samples), order)
