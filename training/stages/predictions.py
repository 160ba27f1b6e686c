"""Stage `predictions`: each configured survey segmented by the best registered model of its task.

Writes `<predict.output_dir>/<survey name>/` (classes.npy, classes.sgy for a SEG-Y input, classes.json with
the amplitude mapping, inline.png); the model comes from a loader the front door passes (the MLflow store).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from torch import nn

from training.lookup import lookup
from training.settings import Settings
from training.settings.predict import PredictSettings, SurveySection
from training.survey import AmplitudeSettings, ReadOptions, SurveyPrediction, TilingSettings, predict_survey

CLASSES_FILE = "classes.npy"
FIGURE_FILE = "inline.png"


def read_options(settings: PredictSettings, shape: tuple[int, ...] | None = None, line_2d: bool = False,
                 **overrides: object) -> ReadOptions:
    """How to read a survey: the header bytes, byte order and duplicates rule of the settings (`overrides`,
    e.g. the CLI's flags, replace those not None), a raw file's shape, the 2-D line flag."""
    chosen = {"inline_byte": settings.inline_byte, "crossline_byte": settings.crossline_byte,
              "endian": settings.endian, "duplicates": settings.duplicates}
    chosen.update({key: value for key, value in overrides.items() if value is not None})
    return ReadOptions(shape=shape, line_2d=line_2d, **chosen)


def tiling(settings: PredictSettings) -> TilingSettings:
    """Tiles of the model's training size with the configured overlap, batch, device and precision."""
    return TilingSettings(overlap=settings.overlap, batch_size=settings.batch_size, device=settings.device,
                          precision=settings.precision)


def amplitude(settings: PredictSettings, percentiles: tuple[float, float] | None | str = "settings"
              ) -> AmplitudeSettings:
    """The amplitude mapping of the settings (`percentiles` overrides theirs; None maps nothing)."""
    section = settings.amplitude
    chosen = section.percentiles if percentiles == "settings" else percentiles
    return AmplitudeSettings(percentiles=chosen, target_range=section.target_range,
                             max_traces=section.max_traces, seed=section.seed)


def survey_output(settings: Settings, root: Path, name: str) -> Path:
    """Where the `predictions` stage writes survey `name`'s classes."""
    return Path(root) / settings.predict.output_dir / name / CLASSES_FILE


def predict_configured_survey(settings: Settings, root: Path, name: str,
                              load_model: Callable[[str], nn.Module],
                              model_reference: Callable[[str], str],
                              model_provenance: Callable[[str], Mapping[str, str]] | None = None,
                              ) -> SurveyPrediction:
    """Segment survey `name` of `predict.surveys` with the model `model_reference(task)` names (e.g. the
    task's best registered model), loaded once the survey is checked; `model_provenance(reference)`: what
    the record says of the model (e.g. the version and run an alias resolves to). The stage's former outputs
    are replaced; its input never is."""
    survey: SurveySection = lookup("survey (predict.surveys)", name, settings.predict.surveys)
    reference = model_reference(survey.task)
    output = survey_output(settings, root, name)
    resolved = model_provenance or (lambda chosen: {"model": chosen})
    return predict_survey(
        lambda: load_model(reference), Path(root) / survey.path, output, direction=settings.predict.direction,
        read=read_options(settings.predict, survey.shape, survey.line_2d), tiling=tiling(settings.predict),
        amplitude=amplitude(settings.predict), probabilities=settings.predict.probabilities,
        figure=output.with_name(FIGURE_FILE), progress=False,
        provenance=lambda: {**resolved(reference), "survey": name, "task": survey.task}, overwrite=True)
