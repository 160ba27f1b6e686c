"""Segmenting a whole survey slice by slice: amplitudes mapped once for the survey, every inline (or
crossline, or both averaged) predicted in tiles, the classes written as `.npy` (and as SEG-Y for a SEG-Y
input), a JSON record of what was done beside them. Memory stays flat however large the survey."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.atomic import write_atomic
from training.survey.amplitude import AmplitudeMapping, AmplitudeSettings, fit_amplitude_mapping
from training.survey.contract import model_contract
from training.survey.figures import overlay_figure
from training.survey.outputs import NpyOutput, SegyCopy, refuse_unsafe_outputs
from training.survey.readers import ReadOptions, open_survey
from training.survey.segy import SegySurvey
from training.survey.tiling import Precision, TiledPredictor
from training.survey.volumes import AXES, Axis, Survey, SurveyFileError

Direction = Literal["inline", "crossline", "both"]
DIRECTIONS: tuple[Direction, ...] = ("inline", "crossline", "both")
PROBABILITY_DTYPE = np.dtype(np.float16)


@dataclass(frozen=True)
class TilingSettings:
    """`tile_shape` (default: the model's `training_shape`), `overlap` (default: a quarter of the tile),
    tiles per forward pass, device (default: CUDA when available) and precision (see `TiledPredictor`)."""

    tile_shape: tuple[int, int] | None = None
    overlap: tuple[int, int] | None = None
    batch_size: int = 8
    device: str | None = None
    precision: Precision = "auto"


@dataclass(frozen=True)
class PredictionPaths:
    """Where a survey's prediction goes, all beside the classes `.npy`."""

    classes: Path
    metadata: Path
    segy: Path | None = None
    probabilities: Path | None = None

    @classmethod
    def beside(cls, classes: Path, *, segy: bool, probabilities: bool) -> PredictionPaths:
        classes = Path(classes).absolute()
        if classes.suffix != ".npy":
            raise SurveyFileError(f"{classes}: the classes are written as .npy; name the output <name>.npy")
        return cls(classes=classes, metadata=classes.with_suffix(".json"),
                   segy=classes.with_suffix(".sgy") if segy else None,
                   probabilities=classes.with_name(f"{classes.stem}.probabilities.npy") if probabilities
                   else None)

    def all(self) -> list[Path]:
        """Every path this prediction writes."""
        return [path for path in (self.classes, self.metadata, self.segy, self.probabilities) if path]


@dataclass(frozen=True)
class SurveyPrediction:
    """What `predict_survey` did; also written as JSON to `paths.metadata`."""

    source: Path
    paths: PredictionPaths
    survey_shape: tuple[int, int, int]
    direction: Direction
    tile_shape: tuple[int, int]
    overlap: tuple[int, int]
    amplitude_mapping: AmplitudeMapping | None
    class_counts: list[int]
    sections: int
    seconds: float
    figure: Path | None = None
    provenance: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=str) + "\n"


class _Outputs:
    """The classes (and optional SEG-Y copy and probabilities) being written; all renamed into place on
    `commit`, all removed on `abort`."""

    def __init__(self, survey: Survey, paths: PredictionPaths) -> None:
        self.survey, self.paths, self.counts = survey, paths, np.zeros(0, dtype=np.int64)
        self.classes = NpyOutput(paths.classes, dtype=np.dtype(np.uint8), survey_shape=survey.shape,
                                 ndim=survey.ndim)
        self.segy = SegyCopy(survey, paths.segy) if paths.segy is not None else None
        self.probabilities: NpyOutput | None = None

    def write(self, axis: Axis, index: int, probabilities: torch.Tensor) -> None:
        classes = probabilities.argmax(dim=0).to(torch.uint8).cpu().numpy()
        self.classes.write(axis, index, classes)
        if self.segy is not None:
            self.segy.write(axis, index, classes)
        if self.paths.probabilities is not None:
            if self.probabilities is None:
                self.probabilities = NpyOutput(self.paths.probabilities, dtype=PROBABILITY_DTYPE,
                                               survey_shape=self.survey.shape, ndim=self.survey.ndim,
                                               leading=(probabilities.shape[0],))
            self.probabilities.write(axis, index, probabilities.cpu().numpy().astype(PROBABILITY_DTYPE))
        counts = np.bincount(classes.reshape(-1), minlength=probabilities.shape[0])
        self.counts = counts + np.pad(self.counts, (0, len(counts) - len(self.counts)))

    def _all(self) -> list[NpyOutput | SegyCopy]:
        return [output for output in (self.classes, self.segy, self.probabilities) if output is not None]

    def commit(self) -> None:
        for output in self._all():
            output.commit()

    def abort(self) -> None:
        for output in self._all():
            output.abort()


@contextmanager
def _writing(survey: Survey, paths: PredictionPaths) -> Iterator[_Outputs]:
    outputs = _Outputs(survey, paths)
    try:
        yield outputs
    except BaseException:
        outputs.abort()
        raise


def _mapped_section(survey: Survey, axis: Axis, index: int, mapping: AmplitudeMapping | None) -> np.ndarray:
    section = survey.section(axis, index)
    if not np.isfinite(section).all():
        raise SurveyFileError(f"{survey.path}: {axis} {index} holds NaN or inf amplitudes")
    return section if mapping is None else mapping.apply(section)


def _check_direction(survey: Survey, direction: Direction) -> tuple[Axis, ...]:
    if direction not in DIRECTIONS:
        raise SurveyFileError(f"unknown direction {direction!r}; known: {', '.join(DIRECTIONS)}")
    if survey.ndim == 2 and direction != "inline":
        raise SurveyFileError(f"{survey.path}: a 2-D section has no crosslines to predict along; use inline")
    return AXES if direction == "both" else (direction,)


def _figure_index(survey: Survey, figure_inline: int | None) -> int:
    """The 0-based index of inline number `figure_inline` (default: the middle inline)."""
    if figure_inline is None:
        return survey.shape[0] // 2
    matches = np.flatnonzero(survey.inline_numbers == figure_inline)
    if len(matches) == 0:
        numbers = survey.inline_numbers
        raise SurveyFileError(f"{survey.path}: no inline {figure_inline}; inlines run "
                              f"{numbers[0]}..{numbers[-1]}")
    return int(matches[0])


def _predict_slices(predictor: TiledPredictor, survey: Survey, axes: tuple[Axis, ...],
                    mapping: AmplitudeMapping | None, outputs: _Outputs, bar: tqdm) -> None:
    """Predict every slice along `axes` into `outputs`; along both axes, the probabilities are summed in a
    temporary array on disk, then each inline's mean goes to the outputs."""
    if len(axes) == 1:
        for index in range(survey.shape[AXES.index(axes[0])]):
            outputs.write(axes[0], index, predictor.probabilities(_mapped_section(survey, axes[0], index,
                                                                                    mapping)))
            bar.update()
        return
    sums: NpyOutput | None = None
    try:
        for axis in axes:
            for index in range(survey.shape[AXES.index(axis)]):
                blended = predictor.probabilities(_mapped_section(survey, axis, index, mapping)).cpu().numpy()
                if sums is None:
                    classes = outputs.paths.classes
                    sums = NpyOutput(classes.with_name(f"{classes.stem}.sums.npy"),
                                     dtype=np.dtype(np.float32), survey_shape=survey.shape,
                                     ndim=survey.ndim, leading=(blended.shape[0],))
                sums.write(axis, index, blended + (sums.read(axis, index) if axis != axes[0] else 0.0))
                bar.update()
        for index in range(survey.shape[0]):
            outputs.write("inline", index, torch.from_numpy(sums.read("inline", index) / len(axes)))
    finally:
        if sums is not None:
            sums.abort()


def predict_survey(
    model: nn.Module,
    source: Path,
    output: Path,
    *,
    direction: Direction = "inline",
    read: ReadOptions | None = None,
    tiling: TilingSettings | None = None,
    amplitude: AmplitudeSettings | None = None,
    probabilities: bool = False,
    figure: Path | None = None,
    figure_inline: int | None = None,
    progress: bool = True,
    provenance: Mapping[str, str] | None = None,
    overwrite: bool = False,
) -> SurveyPrediction:
    """Segment the survey `source` with `model` and write the classes to `output` (`.npy`, laid out like
    the input), for a SEG-Y input a SEG-Y copy with the classes as trace values (`.sgy` beside it),
    optionally the class probabilities (float16, classes first), optionally a figure of one inline
    (`figure_inline`, an inline number; default the middle one), and `output` with suffix `.json`: the
    returned record, amplitude mapping included. `direction` "both" averages the inline and crossline
    probabilities. Defaults: `ReadOptions()`, `TilingSettings()`, `AmplitudeSettings()`. Nothing appears
    at the output paths unless the whole survey is done; no output may be the input survey, and an existing
    output is replaced only with `overwrite`."""
    tiling = tiling or TilingSettings()
    contract = model_contract(model, tile_shape=tiling.tile_shape)
    predictor = TiledPredictor(model, tile_shape=contract.training_shape, overlap=tiling.overlap,
                               batch_size=tiling.batch_size, device=tiling.device, precision=tiling.precision)
    started = time.perf_counter()
    with closing(open_survey(source, read)) as survey:
        axes = _check_direction(survey, direction)
        paths = PredictionPaths.beside(output, segy=isinstance(survey, SegySurvey),
                                       probabilities=probabilities)
        refuse_unsafe_outputs(source, [*paths.all(), *([Path(figure)] if figure is not None else [])],
                              overwrite=overwrite)
        figure_index = _figure_index(survey, figure_inline) if figure is not None else 0
        mapping = fit_amplitude_mapping(survey, amplitude or AmplitudeSettings(), contract.input_range)
        sections = sum(survey.shape[AXES.index(axis)] for axis in axes)
        bar = tqdm(total=sections, unit="section", desc=Path(source).name, disable=not progress)
        with closing(bar), _writing(survey, paths) as outputs:
            _predict_slices(predictor, survey, axes, mapping, outputs, bar)
            if figure is not None:
                overlay_figure(figure, f"{Path(source).name}: inline {survey.inline_numbers[figure_index]}",
                               _mapped_section(survey, "inline", figure_index, mapping),
                               outputs.classes.read("inline", figure_index))
            outputs.commit()
    result = SurveyPrediction(
        source=Path(source).absolute(), paths=paths, survey_shape=survey.shape, direction=direction,
        tile_shape=predictor.tile_shape, overlap=predictor.overlap, amplitude_mapping=mapping,
        class_counts=outputs.counts.tolist(), sections=sections,
        seconds=round(time.perf_counter() - started, 3),
        figure=None if figure is None else Path(figure).absolute(), provenance=dict(provenance or {}),
    )
    write_atomic(paths.metadata, result.to_json())
    return result
