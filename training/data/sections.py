"""One section to segment, read from a file: the record's raw `.dat`, a NumPy `.npy`, or SEG-Y.

Every reader returns a float32 (H, W) array with H the time/depth axis (rows) and W the traces, the
orientation of the record's sections; SEG-Y traces become the columns.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from training.data.layout import INPUT_DTYPE

Shape = tuple[int, int]


def _read_dat(path: Path, shape: Shape | None) -> np.ndarray:
    if shape is None:
        raise ValueError(f"{path}: a raw .dat section has no header; give its shape (height, width; "
                         "`geofm predict --shape H W`)")
    expected = shape[0] * shape[1] * INPUT_DTYPE.itemsize
    size = path.stat().st_size
    if size != expected:
        raise ValueError(f"{path}: {size} bytes, but a {shape[0]}x{shape[1]} float32 section has {expected}")
    return np.fromfile(path, dtype=INPUT_DTYPE).reshape(shape)


def _read_npy(path: Path, shape: Shape | None) -> np.ndarray:
    try:
        section = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise ValueError(f"{path}: not a NumPy array file ({error})") from error
    if section.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D section, got an array of shape {section.shape}")
    return section


def _read_segy(path: Path, shape: Shape | None) -> np.ndarray:
    import segyio

    try:
        with segyio.open(path, ignore_geometry=True) as segy:
            traces = segyio.collect(segy.trace[:])
    except (RuntimeError, OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read as SEG-Y ({error})") from error
    return traces.T


SECTION_READERS: dict[str, Callable[[Path, Shape | None], np.ndarray]] = {
    ".dat": _read_dat,
    ".npy": _read_npy,
    ".sgy": _read_segy,
    ".segy": _read_segy,
}


def read_section(path: Path, shape: Shape | None = None) -> np.ndarray:
    """The section in `path` as float32 (H, W); `shape` is needed for a raw `.dat` only. A file that cannot
    be read, or holds no finite 2-D section of that shape, is an error naming it."""
    path = Path(path)
    reader = SECTION_READERS.get(path.suffix.lower())
    if reader is None:
        raise ValueError(f"{path}: unknown section format; known: {', '.join(SECTION_READERS)}")
    if not path.is_file():
        raise FileNotFoundError(f"section file not found: {path}")
    section = np.ascontiguousarray(reader(path, shape), dtype=np.float32)
    if shape is not None and section.shape != tuple(shape):
        raise ValueError(f"{path}: section is {section.shape[0]}x{section.shape[1]}, expected "
                         f"{shape[0]}x{shape[1]}")
    if not np.isfinite(section).all():
        raise ValueError(f"{path}: the section holds NaN or inf")
    return section
