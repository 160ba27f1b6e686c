"""Prediction outputs written slice by slice to temporary siblings and renamed into place only when the
whole survey is done: `.npy` arrays laid out like the input, and a SEG-Y copy of a SEG-Y input."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import segyio
import segyio.tools

from training.atomic import temporary_file_for
from training.survey.segy import SegySurvey
from training.survey.volumes import Axis, SurveyFileError, cube_view, slice_cells


def _same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file: equal once symlinks are resolved, or hard links of one inode."""
    if first.resolve() == second.resolve():
        return True
    return first.exists() and second.exists() and os.path.samefile(first, second)


def refuse_unsafe_outputs(source: Path, outputs: Iterable[Path], *, overwrite: bool = False) -> None:
    """Refuse, before anything is written, an output that is the input survey (through symlinks and hard
    links), one path given to two outputs, an output that is a folder, and an existing output unless
    `overwrite`: a prediction never replaces its input, and replaces a former result only when asked."""
    source, taken = Path(source), []
    for output in map(Path, outputs):
        if _same_file(output, source):
            raise SurveyFileError(f"{output}: this output would overwrite the input survey {source}; choose "
                                  "another --output name")
        if any(_same_file(output, other) for other in taken):
            raise SurveyFileError(f"{output}: two outputs of this prediction would share this path; choose "
                                  "another --output or --figure name")
        if output.is_dir():
            raise SurveyFileError(f"{output}: is a folder; name a file for this output")
        if output.exists() and not overwrite:
            raise SurveyFileError(f"{output}: exists already; pass --overwrite to replace it, or choose "
                                  "another --output name")
        taken.append(output)


def temporary_sibling(path: Path) -> Path:
    """The hidden file beside `path` an output is written to before it is renamed to `path` (those a killed
    prediction left are removed first)."""
    return temporary_file_for(path)


class NpyOutput:
    """A `.npy` of `leading` axes (e.g. classes) followed by the survey's stored axes ((sample, trace) for a
    section, (inline, crossline, sample) for a volume). Mapped afresh for each access, so the pages written
    leave memory with each slice."""

    def __init__(self, path: Path, *, dtype: np.dtype, survey_shape: tuple[int, int, int], ndim: int,
                 leading: tuple[int, ...] = ()) -> None:
        self.path, self.temporary, self.ndim = Path(path), temporary_sibling(Path(path)), ndim
        stored = (survey_shape[2], survey_shape[1]) if ndim == 2 else survey_shape
        self.path.parent.mkdir(parents=True, exist_ok=True)
        np.lib.format.open_memmap(self.temporary, mode="w+", dtype=dtype, shape=(*leading, *stored)).flush()

    def _cube(self, mode: str) -> np.ndarray:
        return cube_view(np.load(self.temporary, mmap_mode=mode), self.ndim)

    @staticmethod
    def _slice(axis: Axis, index: int) -> tuple:
        return (..., *slice_cells(axis, index), slice(None))

    def write(self, axis: Axis, index: int, values: np.ndarray) -> None:
        """Put slice `index` along `axis`, given as (..., samples, traces)."""
        array = self._cube("r+")
        array[self._slice(axis, index)] = np.swapaxes(values, -1, -2)
        array.flush()

    def read(self, axis: Axis, index: int) -> np.ndarray:
        """Slice `index` along `axis` as written so far, (..., samples, traces)."""
        return np.swapaxes(np.array(self._cube("r")[self._slice(axis, index)]), -1, -2)

    def commit(self) -> None:
        self.temporary.replace(self.path)

    def abort(self) -> None:
        self.temporary.unlink(missing_ok=True)


class SegyCopy:
    """A SEG-Y with the textual, binary and trace headers of `source` and the classes as trace values, in
    the source's sample format and byte order."""

    def __init__(self, source: SegySurvey, path: Path) -> None:
        self.path, self.temporary, self.grid = Path(path), temporary_sibling(Path(path)), source.grid
        self.path.parent.mkdir(parents=True, exist_ok=True)
        spec = segyio.tools.metadata(source.handle)
        self.handle = segyio.create(str(self.temporary), spec)
        for number in range(spec.ext_headers + 1):
            self.handle.text[number] = source.handle.text[number]
        self.handle.bin = source.handle.bin
        self.handle.header = source.handle.header

    def write(self, axis: Axis, index: int, values: np.ndarray) -> None:
        """Put the classes (samples, traces) of slice `index` along `axis` into its traces; a dead trace
        (a grid cell the input holds no trace for) stays absent, as in the input."""
        columns = values.astype(self.handle.dtype).T
        for number, trace in zip(self.grid[slice_cells(axis, index)], columns, strict=True):
            if number >= 0:
                self.handle.trace[int(number)] = np.ascontiguousarray(trace)

    def commit(self) -> None:
        self.handle.close()
        self.temporary.replace(self.path)

    def abort(self) -> None:
        self.handle.close()
        self.temporary.unlink(missing_ok=True)
