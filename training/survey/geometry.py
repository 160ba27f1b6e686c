"""What a survey's axes are: what the rows of its grid are (inlines; a single crossline or a 2-D line read as
one line), the numbers of its rows and of the traces along them, and its sample axis (times from the SEG-Y
header, else sample indices). Figures label their axes with it; the prediction record names the classes'
layout with it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Geometry:
    """`rows`: what one row of the grid is (`inline`, `crossline` for a file of one crossline, `line` for a
    2-D line), `columns`: what its traces are numbered by (`crossline`, `inline`, `trace`);
    `row_numbers`/`column_numbers`: their numbers; `samples`: the sample axis in `sample_unit`."""

    rows: str
    columns: str
    row_numbers: np.ndarray
    column_numbers: np.ndarray
    samples: np.ndarray
    sample_unit: str = "sample"

    @classmethod
    def indexed(cls, shape: tuple[int, int, int], *, line: bool = False) -> Geometry:
        """Axes numbered from 0: a volume's inlines and crosslines, or a 2-D line's traces."""
        return cls(rows="line" if line else "inline", columns="trace" if line else "crossline",
                   row_numbers=np.arange(shape[0]), column_numbers=np.arange(shape[1]),
                   samples=np.arange(shape[2]))

    def layout(self, ndim: int) -> list[str]:
        """The names of the axes of an array laid out like the survey: (sample, trace) for a 2-D line,
        (inline, crossline, sample) for a volume."""
        return ["sample", self.columns] if ndim == 2 else [self.rows, self.columns, "sample"]

    def numbers(self, axis: str) -> np.ndarray:
        """The numbers of the slices along `axis` (`inline`: the grid's rows, `crossline`: its columns)."""
        return self.row_numbers if axis == "inline" else self.column_numbers

    def name(self, axis: str) -> str:
        """What a slice along `axis` is called in this survey."""
        return self.rows if axis == "inline" else self.columns
