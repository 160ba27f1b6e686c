"""The learning curves of one task x model: loss and mIoU per epoch, train and validation, every seed.

A PNG rather than a vega plot of history.csv: DVC's HTML page loads vega from a CDN, and is blank offline;
an image plot is drawn by the page itself. The file holds no matplotlib version, so the same curves give
the same bytes (and the same hash in dvc.lock) under any matplotlib.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from training.atomic import write_atomic

HISTORY_FIGURE = "history.png"
PANELS = (("loss", "loss (lower is better)"), ("miou", "mIoU"))
"""(metric suffix in history.csv, panel title): each panel shows `train_<suffix>` and `val_<suffix>`."""
SPLIT_STYLES = {"train": "--", "val": "-"}
MARKED_EPOCHS = 20
"""Up to this many epochs each point is marked (one epoch is a point, not a line); beyond, lines only."""


def history_figure(path: Path, history: pd.DataFrame, title: str) -> None:
    """Draw `history` (columns `epoch`, `seed`, `train_loss`, `val_loss`, `train_miou`, `val_miou`; one row
    per seed and epoch, as the stage's history.csv) to the PNG `path`, written atomically."""
    required = {"epoch", "seed"} | {f"{split}_{metric}" for split in SPLIT_STYLES for metric, _ in PANELS}
    missing = sorted(required - set(history.columns))
    if missing:
        raise ValueError(f"{path}: the training history has no column {', '.join(missing)}; "
                         f"it has {', '.join(map(str, history.columns))}")
    if history.empty:
        raise ValueError(f"{path}: the training history has no epoch to draw")
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure, axes = plt.subplots(1, len(PANELS), figsize=(9, 3.4), constrained_layout=True)
    curves = list(history.sort_values("epoch").groupby("seed", sort=True))
    marker = "o" if history["epoch"].nunique() <= MARKED_EPOCHS else None
    for axis, (metric, label) in zip(axes, PANELS, strict=True):
        for index, (seed, curve) in enumerate(curves):
            for split, style in SPLIT_STYLES.items():
                axis.plot(curve["epoch"], curve[f"{split}_{metric}"], style, color=f"C{index % 10}",
                          marker=marker, markersize=3, label=f"{split}, seed {seed}")
        axis.set_title(label)
        axis.set_xlabel("epoch")
        axis.set_xlim(history["epoch"].min() - 0.5, history["epoch"].max() + 0.5)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axis.grid(alpha=0.3)
    axes[-1].set_ylim(0, 1)
    axes[-1].legend(fontsize="small")
    figure.suptitle(title)
    image = io.BytesIO()
    figure.savefig(image, format="png", dpi=100, metadata={"Software": None})
    plt.close(figure)
    write_atomic(Path(path), image.getvalue())
