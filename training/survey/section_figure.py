"""The figure of a predicted survey: one line of the survey beside the classes laid over it, with the line's
trace numbers (inline or crossline, or trace) and sample times on the axes and a legend of the classes; dead
traces are left blank. Written as PNG atomically."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.atomic import write_atomic


@dataclass(frozen=True)
class SectionAxes:
    """What the columns and rows of a section are: `traces` named `trace_name` (e.g. crossline numbers),
    `samples` named `sample_name` (e.g. time (ms))."""

    trace_name: str
    traces: np.ndarray
    sample_name: str
    samples: np.ndarray

    def extent(self) -> tuple[float, float, float, float]:
        """The image extent putting each pixel's centre on its trace number and sample value."""
        half_trace = (self.traces[1] - self.traces[0]) / 2 if len(self.traces) > 1 else 0.5
        half_sample = (self.samples[1] - self.samples[0]) / 2 if len(self.samples) > 1 else 0.5
        return (float(self.traces[0] - half_trace), float(self.traces[-1] + half_trace),
                float(self.samples[-1] + half_sample), float(self.samples[0] - half_sample))


def survey_figure(path: Path, title: str, section: np.ndarray, classes: np.ndarray, axes: SectionAxes,
                  num_classes: int, dead: np.ndarray | None = None, class_names: Sequence[str] | None = None,
                  class_colours: Sequence[str] | None = None) -> None:
    """Section | classes over the section, both (samples, traces); `dead`: traces (columns) to leave blank;
    `class_names` and `class_colours` (`#rrggbb`) label and colour the classes (default: `class <id>`,
    viridis)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    colours = (ListedColormap(list(class_colours)) if class_colours is not None
               else plt.get_cmap("viridis", max(num_classes, 2)))
    names = (list(class_names) if class_names is not None
             else [f"class {number}" for number in range(num_classes)])
    blank = np.broadcast_to(np.zeros(classes.shape[1], dtype=bool) if dead is None else dead, classes.shape)
    shown = np.ma.masked_array(section, blank)
    figure, panels = plt.subplots(1, 2, figsize=(9, 4), sharey=True, constrained_layout=True)
    for panel, name in zip(panels, ("section", "prediction"), strict=True):
        panel.imshow(shown, cmap="gray", interpolation="nearest", aspect="auto", extent=axes.extent())
        panel.set_title(name)
        panel.set_xlabel(axes.trace_name)
    panels[1].imshow(np.ma.masked_array(classes, blank), cmap=colours, vmin=-0.5, vmax=colours.N - 0.5,
                     alpha=0.45, interpolation="nearest", aspect="auto", extent=axes.extent())
    panels[0].set_ylabel(axes.sample_name)
    panels[1].legend(handles=[Patch(color=colours(number), label=names[number])
                              for number in range(num_classes)], loc="lower right", fontsize="small")
    figure.suptitle(title)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    plt.close(figure)
    write_atomic(Path(path), image.getvalue())
