"""Quick-look figures of a prediction, written as PNG atomically."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from training.atomic import write_atomic
from training.tasks import UNLABELLED


def _panels(path: Path, title: str, panels: list[tuple[str, np.ndarray, np.ndarray | None]]) -> None:
    """One row of (name, image shown in gray, classes shown in colour on top or None) panels."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), constrained_layout=True)
    for axis, (name, image, classes) in zip(np.atleast_1d(axes), panels, strict=True):
        if image is not None:
            axis.imshow(image, cmap="gray", interpolation="nearest", aspect="auto")
        if classes is not None:
            axis.imshow(np.ma.masked_equal(classes, UNLABELLED), cmap="viridis", interpolation="nearest",
                        aspect="auto", alpha=None if image is None else 0.45)  # unlabelled left blank
        axis.set_title(name)
        axis.axis("off")
    figure.suptitle(title)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    plt.close(figure)
    write_atomic(Path(path), image.getvalue())


def prediction_figure(path: Path, title: str, section: np.ndarray, prediction: np.ndarray,
                      label: np.ndarray | None = None) -> None:
    """Section, label (when known) and prediction side by side, written to the PNG `path` atomically."""
    panels = [("section", section, None), ("prediction", None, prediction)]
    if label is not None:
        panels.insert(1, ("label", None, label))
    _panels(path, title, panels)

