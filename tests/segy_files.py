"""Small SEG-Y files written with segyio for the survey tests: 2-D lines, 3-D cubes with their traces
inline-sorted, crossline-sorted or shuffled (in either byte order, with traces missing or doubled, with
several offsets), shot gathers without inline/crossline numbers, and files of headers only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import segyio
import segyio.tools

IEEE_FLOAT = segyio.SegySampleFormat.IEEE_FLOAT_4_BYTE
INT16 = segyio.SegySampleFormat.SIGNED_SHORT_2_BYTE
FIRST_INLINE, FIRST_CROSSLINE = 100, 20


def write_line(path: Path, section: np.ndarray, sample_format: int = IEEE_FLOAT) -> Path:
    """A 2-D line whose traces are the columns of the (samples, traces) `section`."""
    segyio.tools.from_array2D(str(path), np.ascontiguousarray(section.T), format=sample_format)
    return path


def cube_trace_order(shape: tuple[int, int], order: str, seed: int = 0) -> list[tuple[int, int]]:
    """The (inline, crossline) index of each trace in file order: `inline` or `crossline` sorted, or
    `shuffled`."""
    cells = [(i, j) for i in range(shape[0]) for j in range(shape[1])]
    if order == "crossline":
        return sorted(cells, key=lambda cell: (cell[1], cell[0]))
    if order == "shuffled":
        return [cells[k] for k in np.random.default_rng(seed).permutation(len(cells))]
    return cells


def write_cube(path: Path, cube: np.ndarray, order: str = "inline", sample_format: int = IEEE_FLOAT,
               cells: list[tuple[int, int]] | None = None, endian: str = "big",
               offsets: list[int] | None = None) -> Path:
    """A 3-D SEG-Y of the (inline, crossline, sample) `cube`, inlines numbered from 100 and crosslines from
    20, traces in `order` (or at the explicit `cells`, which may leave the grid incomplete or repeat a
    cell), with a distinct textual header and per-trace CDP_X so that copied headers can be told apart;
    `offsets`: each trace's offset (default 1), `endian`: the byte order."""
    cells = cells if cells is not None else cube_trace_order(cube.shape[:2], order)
    offsets = offsets if offsets is not None else [1] * len(cells)
    spec = segyio.spec()
    spec.format, spec.samples, spec.tracecount = int(sample_format), list(range(cube.shape[2])), len(cells)
    spec.endian = endian
    with segyio.create(str(path), spec) as segy:
        segy.text[0] = segyio.tools.create_text_header({1: f"geofm test cube {path.name}", 2: order})
        segy.bin.update({segyio.BinField.Interval: 4000, segyio.BinField.JobID: 7})
        for number, (i, j) in enumerate(cells):
            segy.header[number] = {
                segyio.TraceField.INLINE_3D: FIRST_INLINE + i,
                segyio.TraceField.CROSSLINE_3D: FIRST_CROSSLINE + j,
                segyio.TraceField.offset: offsets[number],
                segyio.TraceField.CDP_X: 1000 * i + 10 * j,
                segyio.TraceField.TRACE_SEQUENCE_FILE: number + 1,
            }
            segy.trace[number] = np.ascontiguousarray(cube[i, j]).astype(segy.dtype)
    return path


def write_shot_gathers(path: Path, shots: int, traces_per_shot: int, samples: int) -> Path:
    """Shot gathers as a field tape holds them: no inline/crossline numbers, a field record per shot, the
    offsets of its receivers, the CDP each trace falls on."""
    spec = segyio.spec()
    spec.format, spec.samples = int(IEEE_FLOAT), list(range(samples))
    spec.tracecount = shots * traces_per_shot
    with segyio.create(str(path), spec) as segy:
        rng = np.random.default_rng(0)
        for number in range(spec.tracecount):
            shot, receiver = divmod(number, traces_per_shot)
            segy.header[number] = {segyio.TraceField.FieldRecord: 1 + shot,
                                   segyio.TraceField.offset: 100 + 50 * receiver,
                                   segyio.TraceField.CDP: 1 + 2 * shot + receiver}
            segy.trace[number] = rng.normal(size=samples).astype(np.float32)
    return path


def headers_only(source: Path, path: Path) -> Path:
    """The textual and binary headers of `source` with no trace after them."""
    path.write_bytes(source.read_bytes()[:3600])
    return path


def headers(path: Path, endian: str = "big") -> tuple[bytes, dict, list[dict]]:
    """The textual header, binary header and every trace header of a SEG-Y file."""
    with segyio.open(str(path), ignore_geometry=True, endian=endian) as segy:
        return (bytes(segy.text[0]), dict(segy.bin),
                [dict(segy.header[number]) for number in range(segy.tracecount)])


def traces(path: Path, endian: str = "big") -> np.ndarray:
    """Every trace of a SEG-Y file in file order, (traces, samples)."""
    with segyio.open(str(path), ignore_geometry=True, endian=endian) as segy:
        return segyio.tools.collect(segy.trace[:])
