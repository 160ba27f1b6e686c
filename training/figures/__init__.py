"""Figures of a training, written as PNG files that any viewer shows with no network (`dvc plots show`)."""

from training.figures.history import HISTORY_FIGURE, history_figure

__all__ = ["HISTORY_FIGURE", "history_figure"]
