"""`geofm predict`: segment a survey of your own (2-D or 3-D SEG-Y, .npy, raw .dat) with a logged model;
options left out take their value from params.yaml's `predict` section."""

from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.tracking.store import BenchmarkStore
from training.settings import Project
from training.stages.predictions import amplitude, read_options, tiling
from training.survey import SurveyPrediction, predict_survey


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def describe(result: SurveyPrediction) -> str:
    """What was written, the classes found and the amplitude mapping used, for the terminal."""
    counts = ", ".join(f"{c}: {n}" for c, n in enumerate(result.class_counts))
    mapping = result.amplitude_mapping
    mapped = ("amplitudes used as given" if mapping is None else
              f"amplitudes clipped to [{mapping.clip_low:.6g}, {mapping.clip_high:.6g}] (percentiles "
              f"{mapping.percentiles[0]:g}/{mapping.percentiles[1]:g}) and mapped to "
              f"[{mapping.target_low:g}, {mapping.target_high:g}]")
    written = ", ".join(str(path) for path in (result.paths.classes, result.paths.segy, result.paths.metadata,
                                               result.figure) if path is not None)
    sizes = " x ".join(_plural(size, name) for size, name in zip(result.survey_shape, result.layout,
                                                                    strict=True))
    what = f"{result.line} ({sizes})" if result.line else f"a survey of {sizes}"
    dead = (f"; {_plural(result.dead_traces, 'dead trace')} written as class {result.dead_class}"
            if result.dead_traces else "")
    return (f"{result.source}: {_plural(result.sections, 'section')} of {what} in {result.seconds:.1f} s -> "
            f"{written}\npixels per class: {counts}{dead}; {mapped}")


def run(args: argparse.Namespace, project: Project) -> None:
    """The model is loaded only once the survey, its geometry, its amplitudes and the outputs are checked."""
    settings = project.settings.predict
    store = BenchmarkStore.for_project(project.settings.mlflow, project.root)
    percentiles = None if args.no_amplitude_mapping else (tuple(args.percentiles) if args.percentiles
                                                          else "settings")
    read = read_options(settings, tuple(args.shape) if args.shape else None, args.line_2d,
                        inline_byte=args.inline_byte, crossline_byte=args.crossline_byte, endian=args.endian,
                        duplicates=args.duplicates)
    result = predict_survey(
        lambda: store.load_model(args.model), Path(args.input), Path(args.output),
        direction=args.direction or settings.direction, read=read,
        tiling=tiling(settings), amplitude=amplitude(settings, percentiles),
        probabilities=args.probabilities or settings.probabilities,
        figure=Path(args.figure) if args.figure else None, figure_inline=args.figure_inline,
        provenance=lambda: store.model_provenance(args.model), overwrite=args.overwrite)
    print(describe(result))
