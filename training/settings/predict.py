"""How registered models are applied to surveys: `geofm predict` and the `predictions` stage.

The defaults of `geofm predict`'s options, and the surveys the `predictions` stage (Dagster asset and DVC
stage) segments with each task's best model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from training.settings.base import Section

Pair = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]
Percentile = Annotated[float, Field(ge=0, le=100)]


class AmplitudeSection(Section):
    """Raw amplitudes brought to the model's training range: clipped at percentiles of the whole survey."""

    percentiles: tuple[Percentile, Percentile] | None = Field(
        (1.0, 99.0), description="clip percentiles over the whole survey; null: the data is already in the "
                                 "training range")
    target_range: tuple[float, float] | None = Field(
        None, description="range after mapping; null: the model's own (the record's [0, 255])")
    max_traces: int = Field(10_000, ge=1, description="traces sampled (seeded) to compute the percentiles")
    seed: int = Field(0, ge=0, description="seed of that sample")

    @field_validator("percentiles", "target_range")
    @classmethod
    def _increasing(cls, pair: tuple[float, float] | None) -> tuple[float, float] | None:
        if pair is not None and not pair[0] < pair[1]:
            raise ValueError(f"expected [low, high] with low < high, got {list(pair)}")
        return pair


class SurveySection(Section):
    """One survey for the `predictions` stage: a file and the task whose best model segments it."""

    task: str = Field(min_length=1, description="the task (a paper or declared task) whose `best` model "
                                                "segments the survey")
    path: str = Field(min_length=1, description="the survey file (.sgy/.segy, .npy, .dat), under the root")
    shape: tuple[Annotated[int, Field(gt=0)], ...] | None = Field(
        None, description="shape of a raw .dat: [samples, traces] or [inlines, crosslines, samples]")
    line_2d: bool = Field(False, description="a SEG-Y without inline/crossline geometry: one 2-D line")


class PredictSettings(Section):
    """Tiled survey prediction (tiles of the model's training size, blended) and its outputs."""

    direction: Literal["inline", "crossline", "both"] = Field(
        "inline", description="slices predicted through a 3-D volume; both: their probabilities averaged")
    overlap: Pair | None = Field(None, description="tile overlap in pixels; null: a quarter of the tile")
    batch_size: int = Field(8, ge=1, description="tiles per forward pass")
    device: str | None = Field(None, description="null (CUDA when present), cpu, cuda, cuda:N")
    precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, float32 on the CPU")
    probabilities: bool = Field(False, description="also write the per-class probabilities (float16)")
    inline_byte: int = Field(189, ge=1, description="SEG-Y trace header byte of the inline number")
    crossline_byte: int = Field(193, ge=1, description="SEG-Y trace header byte of the crossline number")
    endian: Literal["auto", "big", "little"] = Field(
        "auto", description="SEG-Y byte order; auto: told from the binary header's sample format code")
    duplicates: Literal["refuse", "first", "last"] = Field(
        "refuse", description="a SEG-Y inline/crossline position held by several traces: refused, or its "
                              "first or last trace kept")
    amplitude: AmplitudeSection = Field(default_factory=AmplitudeSection, description="")
    surveys: dict[str, SurveySection] = Field(
        default_factory=dict, description="what the `predictions` stage segments, by name: `{task, path, "
        "shape?, line_2d?}` (top level only: dvc.yaml makes one stage per name)")
    output_dir: str = Field("predictions", min_length=1,
                            description="`<output_dir>/<survey name>/`: the stage's outputs")
