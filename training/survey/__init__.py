"""Applying a trained model to real surveys: tiled prediction at the training resolution (`tiling`),
surveys read slice by slice (`readers`, `volumes`, `segy`), amplitudes mapped to the training range
(`amplitude`), outputs written atomically (`outputs`) and the whole survey predicted (`predict`)."""

from training.survey.amplitude import AmplitudeMapping, AmplitudeSettings, fit_amplitude_mapping
from training.survey.contract import ModelContract, model_contract
from training.survey.figures import prediction_figure
from training.survey.predict import PredictionPaths, SurveyPrediction, TilingSettings, predict_survey
from training.survey.readers import ReadOptions, open_survey, read_section
from training.survey.section_figure import SectionAxes, survey_figure
from training.survey.tiling import TiledPredictor, predict_section

__all__ = [
    "AmplitudeMapping",
    "AmplitudeSettings",
    "ModelContract",
    "PredictionPaths",
    "ReadOptions",
    "SectionAxes",
    "SurveyPrediction",
    "TiledPredictor",
    "TilingSettings",
    "fit_amplitude_mapping",
    "model_contract",
    "open_survey",
    "predict_section",
    "predict_survey",
    "prediction_figure",
    "read_section",
    "survey_figure",
]
