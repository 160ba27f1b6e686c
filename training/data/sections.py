"""Moved to `training.survey.readers`; kept until its importer (`pipelines/cli.py`) imports from there."""

from training.survey import read_section

__all__ = ["read_section"]
