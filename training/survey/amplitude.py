"""Bringing a survey's raw amplitudes to the range the model was trained on: clip at robust percentiles of
the whole survey (from a seeded sample of its traces, streamed), then scale linearly to the target range.
One mapping per survey, applied the same way to every slice so neighbouring slices stay consistent."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.survey.volumes import Survey, SurveyFileError


@dataclass(frozen=True)
class AmplitudeSettings:
    """`percentiles`: (low, high) clip percentiles of the survey's amplitudes, or None to use the amplitudes
    as they are (data already in the training range); `target_range`: (low, high) after mapping (None: the
    model's `input_range`); `max_traces`: the trace sample the percentiles are computed on (all traces when
    the survey has no more), drawn with `seed`."""

    percentiles: tuple[float, float] | None = (1.0, 99.0)
    target_range: tuple[float, float] | None = None
    max_traces: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.percentiles is not None and not 0 <= self.percentiles[0] < self.percentiles[1] <= 100:
            raise SurveyFileError(f"amplitude percentiles must be (low, high) with 0 <= low < high <= 100, "
                             f"got {self.percentiles}")
        if self.target_range is not None and not self.target_range[0] < self.target_range[1]:
            raise SurveyFileError(f"amplitude target range must be (low, high) with low < high, got "
                             f"{self.target_range}")
        if self.max_traces < 1:
            raise SurveyFileError(f"max_traces must be at least 1, got {self.max_traces}")


@dataclass(frozen=True)
class AmplitudeMapping:
    """Amplitudes `clip_low`..`clip_high` (the survey's `percentiles`) mapped linearly onto
    `target_low`..`target_high`; values outside are clipped. Recorded with every prediction."""

    percentiles: tuple[float, float]
    clip_low: float
    clip_high: float
    target_low: float
    target_high: float
    traces_sampled: int
    traces_total: int
    seed: int

    def apply(self, section: np.ndarray) -> np.ndarray:
        """`section` mapped to the target range, float32."""
        scale = (self.target_high - self.target_low) / (self.clip_high - self.clip_low)
        clipped = np.clip(np.asarray(section, dtype=np.float64), self.clip_low, self.clip_high)
        return ((clipped - self.clip_low) * scale + self.target_low).astype(np.float32)


@dataclass(frozen=True)
class SurveyClip:
    """The survey's amplitudes at `percentiles` (`low`, `high`), from `traces_sampled` of its
    `traces_total` live traces: everything of the mapping but its target, known before a model is loaded."""

    percentiles: tuple[float, float]
    low: float
    high: float
    traces_sampled: int
    traces_total: int
    seed: int

    def onto(self, target: tuple[float, float] | None) -> AmplitudeMapping:
        """The mapping of these clip values onto `target` (the model's training range)."""
        if target is None:
            raise SurveyFileError("the model records no input range (`input_range`) to map amplitudes onto; "
                                  "give the target range, or no percentiles if the survey is already in the "
                                  "training range")
        return AmplitudeMapping(
            percentiles=self.percentiles, clip_low=self.low, clip_high=self.high,
            target_low=float(target[0]), target_high=float(target[1]), traces_sampled=self.traces_sampled,
            traces_total=self.traces_total, seed=self.seed)


def clip_values(values: np.ndarray, percentiles: tuple[float, float], where: str,
                what: str = "survey") -> tuple[float, float]:
    """The amplitudes of `values` at `percentiles`; NaN/inf, or no spread between them, is an error naming
    `where` (the file) and `what` (survey or section)."""
    if not np.isfinite(values).all():
        raise SurveyFileError(f"{where}: the {what} holds NaN or inf amplitudes")
    low, high = (float(value) for value in np.percentile(values, percentiles))
    if not high > low:
        raise SurveyFileError(f"{where}: the amplitudes at the {percentiles[0]} and {percentiles[1]} "
                              f"percentiles are both {low}; nothing to map")
    return low, high


def survey_clip(survey: Survey, settings: AmplitudeSettings) -> SurveyClip | None:
    """The clip values of `survey` from a seeded sample of its live traces (read in chunks; dead traces
    never count); None when `settings.percentiles` is None."""
    if settings.percentiles is None:
        return None
    live = (np.arange(survey.shape[0] * survey.shape[1]) if survey.dead is None
            else np.flatnonzero(~survey.dead.reshape(-1)))
    rng = np.random.default_rng(settings.seed)
    cells = (live if len(live) <= settings.max_traces
             else np.sort(rng.choice(live, settings.max_traces, replace=False)))
    chunk = max(1, 2**22 // survey.shape[2])
    values = np.concatenate([survey.traces(cells[first:first + chunk]).reshape(-1)
                             for first in range(0, len(cells), chunk)])
    low, high = clip_values(values, settings.percentiles, str(survey.path))
    return SurveyClip(percentiles=(float(settings.percentiles[0]), float(settings.percentiles[1])), low=low,
                      high=high, traces_sampled=len(cells), traces_total=len(live), seed=settings.seed)


def fit_amplitude_mapping(
    survey: Survey, settings: AmplitudeSettings, input_range: tuple[float, float] | None
) -> AmplitudeMapping | None:
    """The mapping of `survey` onto `settings.target_range`, or else the model's `input_range` (see
    `survey_clip`); None when `settings.percentiles` is None."""
    clip = survey_clip(survey, settings)
    return None if clip is None else clip.onto(settings.target_range or input_range)


def map_section(section: np.ndarray, percentiles: tuple[float, float], target: tuple[float, float],
                where: str = "request") -> np.ndarray:
    """One section mapped as `geofm predict` maps a 2-D line: clipped at its own `percentiles`, scaled onto
    `target`."""
    low, high = clip_values(np.asarray(section), percentiles, where, "section")
    mapping = SurveyClip(percentiles=percentiles, low=low, high=high, traces_sampled=section.shape[-1],
                         traces_total=section.shape[-1], seed=0).onto(target)
    return mapping.apply(section)
