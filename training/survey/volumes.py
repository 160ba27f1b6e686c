"""Surveys read slice by slice: SEG-Y (2-D lines and 3-D volumes, sorted or not), NumPy `.npy` and raw
float32 `.dat`, never loaded whole.

Every survey is seen as a grid of inlines x crosslines x samples: a 2-D section is one row (an inline, a
crossline or a 2-D line, as its `geometry` says). Arrays are
laid out as segyio's `tools.cube` gives them, (inline, crossline, sample) for a volume, and as the record's
sections, (sample, trace), for a 2-D section. A slice comes back as float32 (samples, traces), the
orientation of the training sections: time/depth down the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from training.errors import GeofmError
from training.survey.geometry import Geometry

Axis = Literal["inline", "crossline"]
AXES: tuple[Axis, ...] = ("inline", "crossline")
INPUT_DTYPE = np.dtype("<f4")
"""The dtype of a raw `.dat` file (the record's inputs)."""


class SurveyFileError(GeofmError, ValueError):
    """A file that cannot be read as a survey; the message names it and says what is wrong."""


class Survey(Protocol):
    """A survey opened for reading; `shape` is (inlines, crosslines, samples), `ndim` 2 for a 2-D line,
    `geometry` what its axes are and their numbers, `dead` the (inline, crossline) cells without a trace
    (None when every cell holds one)."""

    path: Path
    shape: tuple[int, int, int]
    ndim: int
    geometry: Geometry
    dead: np.ndarray | None

    def section(self, axis: Axis, index: int) -> np.ndarray:
        """Inline or crossline number `index` (0-based) as float32 (samples, traces)."""
        ...

    def traces(self, cells: np.ndarray) -> np.ndarray:
        """The traces at flat (inline, crossline) grid positions `cells`, float32 (len(cells), samples)."""
        ...

    def close(self) -> None: ...


def cube_view(array: np.ndarray, ndim: int) -> np.ndarray:
    """A (..., inline, crossline, sample) view of a stored array whose last `ndim` axes are the survey: a
    2-D (sample, trace) section becomes one inline. Writing into the view writes the array."""
    return np.swapaxes(array, -1, -2)[..., None, :, :] if ndim == 2 else array


def slice_cells(axis: Axis, index: int) -> tuple[int | slice, int | slice]:
    """The (inline, crossline) index of one slice of a cube."""
    if axis not in AXES:
        raise ValueError(f"unknown axis {axis!r}; known: {', '.join(AXES)}")
    return (index, slice(None)) if axis == "inline" else (slice(None), index)


@dataclass
class ArraySurvey:
    """A `.npy` or `.dat` array, mapped afresh for each read so the pages read never pile up in memory."""

    path: Path
    open_array: Callable[[], np.ndarray]
    shape: tuple[int, int, int]
    ndim: int

    dead: None = None

    @property
    def geometry(self) -> Geometry:
        return Geometry.indexed(self.shape, line=self.ndim == 2)

    def section(self, axis: Axis, index: int) -> np.ndarray:
        cube = cube_view(self.open_array(), self.ndim)
        return np.array(cube[slice_cells(axis, index)].T, dtype=np.float32)

    def traces(self, cells: np.ndarray) -> np.ndarray:
        flat = cube_view(self.open_array(), self.ndim).reshape(-1, self.shape[2])
        return np.array(flat[cells], dtype=np.float32)

    def close(self) -> None:
        """Nothing stays open between reads."""


def _array_survey(path: Path, open_array: Callable[[], np.ndarray], array: np.ndarray) -> ArraySurvey:
    if array.ndim not in (2, 3):
        raise SurveyFileError(f"{path}: expected a 2-D section (sample, trace) or a 3-D volume (inline, "
                              f"crossline, sample), got an array of shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise SurveyFileError(f"{path}: expected real amplitudes, got dtype {array.dtype}")
    if array.size == 0:
        raise SurveyFileError(f"{path}: the array of shape {array.shape} is empty: no amplitude to predict")
    shape = cube_view(array, array.ndim).shape
    return ArraySurvey(path=path, open_array=open_array, shape=shape, ndim=array.ndim)


def open_npy(path: Path) -> ArraySurvey:
    """A `.npy` section or volume, memory-mapped."""

    def open_array() -> np.ndarray:
        return np.load(path, mmap_mode="r", allow_pickle=False)

    try:
        array = open_array()
    except (ValueError, EOFError) as error:  # EOFError: an empty file
        raise SurveyFileError(f"{path}: not a NumPy array file ({error or 'the file is empty'})") from error
    return _array_survey(path, open_array, array)


def open_dat(path: Path, shape: tuple[int, ...] | None) -> ArraySurvey:
    """A raw little-endian float32 file of the given `shape`, memory-mapped."""
    if shape is None or len(shape) not in (2, 3):
        raise SurveyFileError(f"{path}: a raw .dat file has no header; give its shape: (samples, traces) for "
                              "a section or (inlines, crosslines, samples) for a volume")
    if min(shape) < 1:
        raise SurveyFileError(f"{path}: --shape {' '.join(map(str, shape))}: every size must be a positive "
                              "number of samples, traces or lines")
    expected = int(np.prod(shape)) * INPUT_DTYPE.itemsize
    size = path.stat().st_size
    if size != expected:
        raise SurveyFileError(f"{path}: {size} bytes, but a {'x'.join(map(str, shape))} float32 array has "
                              f"{expected}")

    def open_array() -> np.ndarray:
        return np.memmap(path, dtype=INPUT_DTYPE, mode="r", shape=tuple(shape))

    return _array_survey(path, open_array, open_array())
