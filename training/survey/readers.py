"""Opening a survey file by its suffix, and reading a 2-D section whole."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.errors import GeofmError
from training.survey.byte_order import Endian
from training.survey.segy import open_segy
from training.survey.segy_grid import CROSSLINE_BYTE, INLINE_BYTE, Duplicates
from training.survey.volumes import Survey, SurveyFileError, open_dat, open_npy


class SurveyNotFoundError(GeofmError, FileNotFoundError):
    """The survey file to read is not there."""


@dataclass(frozen=True)
class ReadOptions:
    """How to read a survey: `shape` of a raw `.dat` ((samples, traces) or (inlines, crosslines,
    samples)); for SEG-Y, `line_2d` (one 2-D line in file order), the inline/crossline header bytes, the
    byte order (`auto`: from the binary header) and what to do with positions held by several traces.
    Each has a `geofm predict` flag of the same name."""

    shape: tuple[int, ...] | None = None
    line_2d: bool = False
    inline_byte: int = INLINE_BYTE
    crossline_byte: int = CROSSLINE_BYTE
    endian: Endian = "auto"
    duplicates: Duplicates = "refuse"


def _segy(path: Path, options: ReadOptions) -> Survey:
    return open_segy(path, line_2d=options.line_2d, inline_byte=options.inline_byte,
                     crossline_byte=options.crossline_byte, endian=options.endian,
                     duplicates=options.duplicates)


SURVEY_READERS: dict[str, Callable[[Path, ReadOptions], Survey]] = {
    ".dat": lambda path, options: open_dat(path, options.shape),
    ".npy": lambda path, options: open_npy(path),
    ".sgy": _segy,
    ".segy": _segy,
}


def open_survey(path: Path, options: ReadOptions | None = None) -> Survey:
    """The survey in `path`, opened for slice-by-slice reading (close it, or use `closing`)."""
    path = Path(path)
    reader = SURVEY_READERS.get(path.suffix.lower())
    if reader is None:
        raise SurveyFileError(f"{path}: unknown survey format; known: {', '.join(SURVEY_READERS)}")
    if not path.is_file():
        raise SurveyNotFoundError(f"survey file not found: {path}")
    return reader(path, options or ReadOptions())


def read_section(path: Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The 2-D section in `path` as float32 (samples, traces); `shape` is needed for a raw `.dat` only. A
    3-D volume, or a section with NaN or inf, is an error naming the file."""
    survey = open_survey(path, ReadOptions(shape=None if shape is None else tuple(shape)))
    try:
        if survey.ndim != 2:
            inlines, crosslines, samples = survey.shape
            raise SurveyFileError(f"{path}: expected a 2-D section, got a volume of {inlines} inlines x "
                                  f"{crosslines} crosslines x {samples} samples; predict it with "
                                  "training.survey.predict_survey")
        section = survey.section("inline", 0)
    finally:
        survey.close()
    if not np.isfinite(section).all():
        raise SurveyFileError(f"{path}: the section holds NaN or inf")
    return section
