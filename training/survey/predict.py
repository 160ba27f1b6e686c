"""Segmenting a whole survey slice by slice: amplitudes mapped once for the survey, every inline (or
crossline, or both averaged) predicted in tiles, the classes written as `.npy` (and as SEG-Y for a SEG-Y
input), a JSON record of what was done beside them. Memory stays flat however large the survey."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from training.atomic import write_atomic
from training.survey.amplitude import AmplitudeMapping, AmplitudeSettings, survey_clip
from training.survey.contract import ModelContract, model_contract
from training.survey.outputs import NpyOutput, SegyCopy, refuse_unsafe_outputs
from training.survey.readers import ReadOptions, open_survey
from training.survey.section_figure import SectionAxes, survey_figure
from training.survey.segy import SegySurvey
from training.survey.tiling import Precision, TiledPredictor
from training.survey.volumes import AXES, Axis, Survey, SurveyFileError, slice_cells

Direction = Literal["inline", "crossline", "both"]
DIRECTIONS: tuple[Direction, ...] = ("inline", "crossline", "both")
PROBABILITY_DTYPE = np.dtype(np.float16)
DEAD_CLASS = 255
"""The class written for a dead trace (a grid cell no trace of the SEG-Y sits on); its probabilities: NaN."""


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
    """What `predict_survey` did; also written as JSON to `paths.metadata`. `survey_shape` is the shape of
    the classes array and `layout` names its axes (`["sample", "crossline"]` for one inline,
    `["sample", "inline"]` for one crossline, `["sample", "trace"]` for a 2-D line, `["inline",
    "crossline", "sample"]` for a volume); `line`: what a 2-D survey is (e.g. `crossline 1200`);
    `direction`: the slices predicted; `dead_traces`: grid cells without a trace, written as `dead_class`
    and counted in no class."""

    source: Path
    paths: PredictionPaths
    survey_shape: tuple[int, ...]
    layout: list[str]
    line: str | None
    direction: str
    tile_shape: tuple[int, int]
    overlap: tuple[int, int]
    amplitude_mapping: AmplitudeMapping | None
    class_counts: list[int]
    sections: int
    seconds: float
    dead_traces: int = 0
    dead_class: int = DEAD_CLASS
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

    def dead(self, axis: Axis, index: int) -> np.ndarray:
        """Which traces of slice `index` along `axis` are dead."""
        if self.survey.dead is None:
            return np.zeros(self.survey.shape[1 - AXES.index(axis)], dtype=bool)
        return self.survey.dead[slice_cells(axis, index)]

    def write(self, axis: Axis, index: int, probabilities: torch.Tensor) -> None:
        dead = self.dead(axis, index)
        classes = probabilities.argmax(dim=0).to(torch.uint8).cpu().numpy()
        classes[:, dead] = DEAD_CLASS
        self.classes.write(axis, index, classes)
        if self.segy is not None:
            self.segy.write(axis, index, classes)
        if self.paths.probabilities is not None:
            if self.probabilities is None:
                self.probabilities = NpyOutput(self.paths.probabilities, dtype=PROBABILITY_DTYPE,
                                               survey_shape=self.survey.shape, ndim=self.survey.ndim,
                                               leading=(probabilities.shape[0],))
            values = probabilities.cpu().numpy().astype(PROBABILITY_DTYPE)
            values[..., dead] = np.nan
            self.probabilities.write(axis, index, values)
        counts = np.bincount(classes[:, ~dead].reshape(-1), minlength=probabilities.shape[0])
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


def _axes(survey: Survey, direction: Direction) -> tuple[Axis, ...]:
    """The slices to predict: a survey of one line (one inline, one crossline, a 2-D line) along that line
    whatever `direction` says; a volume along `direction`."""
    if direction not in DIRECTIONS:
        raise SurveyFileError(f"unknown direction {direction!r}; known: {', '.join(DIRECTIONS)}; choose it "
                              "with --direction")
    if survey.ndim == 2 or survey.shape[0] == 1:
        return ("inline",)
    if survey.shape[1] == 1:
        return ("crossline",)
    return AXES if direction == "both" else (direction,)


def _figure_index(survey: Survey, axis: Axis, number: int | None) -> int:
    """The 0-based index of the slice numbered `number` along `axis` (default: the middle one)."""
    numbers = survey.geometry.numbers(axis)
    if number is None:
        return len(numbers) // 2
    matches = np.flatnonzero(numbers == number)
    if len(matches) == 0:
        name = survey.geometry.name(axis)
        raise SurveyFileError(f"{survey.path}: no {name} {number} for --figure-inline; {name}s run "
                              f"{numbers[0]}..{numbers[-1]}")
    return int(matches[0])


def _line(survey: Survey) -> str | None:
    """What a survey of one line is, e.g. `crossline 1200`; None for a volume."""
    if survey.ndim == 3:
        return None
    return f"{survey.geometry.rows} {survey.geometry.row_numbers[0]}"


def _load(model: nn.Module | Callable[[], nn.Module]) -> nn.Module:
    return model if isinstance(model, nn.Module) else model()


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
    model: nn.Module | Callable[[], nn.Module],
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
    provenance: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    overwrite: bool = False,
) -> SurveyPrediction:
    """Segment the survey `source` with `model` and write the classes to `output` (`.npy`, laid out like
    the input; a SEG-Y of one line as (samples, traces)), for a SEG-Y input a SEG-Y copy with the classes as
    trace values (`.sgy` beside it), optionally the class probabilities (float16, classes first), optionally
    a figure of one line (`figure_inline`, a line number along the predicted direction; default the middle
    one), and `output` with suffix `.json`: the returned record, amplitude mapping included. `direction`
    "both" averages the inline and crossline probabilities; a survey of one line is predicted along it.
    `model` may be a function that loads it, called only once the survey, its geometry, its amplitudes and
    the outputs have been checked (as is `provenance`). Defaults: `ReadOptions()`, `TilingSettings()`,
    `AmplitudeSettings()`. Nothing appears at the output paths unless the whole survey is done; no output
    may be the input survey, and an existing output is replaced only with `overwrite`."""
    tiling = tiling or TilingSettings()
    amplitude = amplitude or AmplitudeSettings()
    started = time.perf_counter()
    with closing(open_survey(source, read)) as survey:
        axes = _axes(survey, direction)
        paths = PredictionPaths.beside(output, segy=isinstance(survey, SegySurvey),
                                       probabilities=probabilities)
        refuse_unsafe_outputs(source, [*paths.all(), *([Path(figure)] if figure is not None else [])],
                              overwrite=overwrite)
        figure_index = _figure_index(survey, axes[0], figure_inline) if figure is not None else 0
        clip = survey_clip(survey, amplitude)
        network = _load(model)
        contract = model_contract(network, tile_shape=tiling.tile_shape)
        mapping = None if clip is None else clip.onto(amplitude.target_range or contract.input_range)
        predictor = TiledPredictor(network, tile_shape=contract.training_shape, overlap=tiling.overlap,
                                   batch_size=tiling.batch_size, device=tiling.device,
                                   precision=tiling.precision)
        sections = sum(survey.shape[AXES.index(axis)] for axis in axes)
        bar = tqdm(total=sections, unit="section", desc=Path(source).name, disable=not progress)
        with closing(bar), _writing(survey, paths) as outputs:
            _predict_slices(predictor, survey, axes, mapping, outputs, bar)
            if figure is not None:
                _figure(Path(figure), survey, axes[0], figure_index, mapping, outputs, contract)
            outputs.commit()
        layout = survey.geometry.layout(survey.ndim)
        stored = np.load(paths.classes, mmap_mode="r").shape
        dead = 0 if survey.dead is None else int(survey.dead.sum())
        line = _line(survey)
        tile = predictor.tile_for(survey.shape[2], survey.shape[1 - AXES.index(axes[0])])
        direction_done = "both" if len(axes) == 2 else survey.geometry.name(axes[0])
    record = provenance() if callable(provenance) else provenance
    result = SurveyPrediction(
        source=Path(source).absolute(), paths=paths, survey_shape=tuple(stored), layout=layout, line=line,
        direction=direction_done, tile_shape=tile, overlap=predictor.overlap, amplitude_mapping=mapping,
        class_counts=outputs.counts.tolist(), sections=sections,
        seconds=round(time.perf_counter() - started, 3), dead_traces=dead,
        figure=None if figure is None else Path(figure).absolute(), provenance=dict(record or {}),
    )
    write_atomic(paths.metadata, result.to_json())
    return result


def _figure(path: Path, survey: Survey, axis: Axis, index: int, mapping: AmplitudeMapping | None,
            outputs: _Outputs, contract: ModelContract) -> None:
    """One line of the survey and its classes, its axes numbered as the survey numbers them."""
    geometry = survey.geometry
    across = "crossline" if axis == "inline" else "inline"
    axes = SectionAxes(trace_name=geometry.name(across), traces=geometry.numbers(across),
                       sample_name=f"time ({geometry.sample_unit})" if geometry.sample_unit == "ms"
                       else "sample", samples=geometry.samples)
    title = f"{Path(survey.path).name}: {geometry.name(axis)} {geometry.numbers(axis)[index]}"
    survey_figure(path, title, _mapped_section(survey, axis, index, mapping),
                  outputs.classes.read(axis, index), axes, num_classes=len(outputs.counts),
                  dead=outputs.dead(axis, index), class_names=contract.class_names,
                  class_colours=contract.class_colours)
