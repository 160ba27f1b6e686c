"""Moved to `training.survey`; kept until its importers (`pipelines/cli.py`, `training/benchmark.py`) import
from there."""

from training.survey import predict_section, prediction_figure

__all__ = ["predict_section", "prediction_figure"]
