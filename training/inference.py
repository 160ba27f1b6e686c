"""Applying a trained model to one raw section, and the figure that shows the result."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from training.data.atomic import write_atomic


def predict_section(model: torch.nn.Module, section: np.ndarray) -> np.ndarray:
    """The class of every pixel of a raw (H, W) section, as uint8 (H, W), on the model's device."""
    device = next(model.parameters()).device
    model.eval()
    with torch.inference_mode():
        logits = model(torch.from_numpy(np.array(section, dtype=np.float32))[None, None].to(device))
    return logits.argmax(dim=1)[0].to(torch.uint8).cpu().numpy()


def prediction_figure(path: Path, title: str, section: np.ndarray, prediction: np.ndarray,
                      label: np.ndarray | None = None) -> None:
    """Section, label (when known) and prediction side by side, written to the PNG `path` atomically."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    panels = [("section", section, "gray"), ("prediction", prediction, "viridis")]
    if label is not None:
        panels.insert(1, ("label", label, "viridis"))
    figure, axes = plt.subplots(1, len(panels), figsize=(3 * len(panels), 3.4), constrained_layout=True)
    for axis, (name, image, colormap) in zip(axes, panels, strict=True):
        axis.imshow(image, cmap=colormap, interpolation="nearest", aspect="auto")
        axis.set_title(name)
        axis.axis("off")
    figure.suptitle(title)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100)
    plt.close(figure)
    write_atomic(Path(path), image.getvalue())
