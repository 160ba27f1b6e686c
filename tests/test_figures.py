"""The learning-curve figure of a training (`training.figures.history_figure`): a PNG drawn from the stage's
history table, the same bytes for the same curves, and a clear error for a table it cannot draw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from training.figures import HISTORY_FIGURE, history_figure


def _history(seeds: tuple[int, ...] = (1234,), epochs: int = 4) -> pd.DataFrame:
    """A history.csv-like table: one row per seed and epoch, losses falling and mIoU rising."""
    rows = []
    for offset, seed in enumerate(seeds):
        for epoch in range(1, epochs + 1):
            rows.append({"seed": seed, "epoch": epoch, "train_loss": 1 / epoch, "val_loss": 1.2 / epoch,
                         "train_miou": 0.2 + 0.15 * epoch, "val_miou": 0.1 + 0.1 * epoch + 0.05 * offset,
                         "lr": 1e-3})
    return pd.DataFrame(rows)


def _drawn_pixels(path: Path) -> int:
    """Pixels of the PNG that are neither white nor light grey (lines, markers, text)."""
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=int)
    return int((pixels.min(axis=2) < 200).sum())


def test_the_figure_is_a_png_with_both_panels_drawn(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FIGURE
    history_figure(path, _history(), title="das/unet")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (900, 340)
        assert "Software" not in image.info  # no matplotlib version: same curves, same bytes everywhere
    assert _drawn_pixels(path) > 5000
    assert [p.name for p in tmp_path.iterdir()] == [HISTORY_FIGURE]  # written atomically, nothing left beside


def test_same_curves_same_bytes_other_curves_other_bytes(tmp_path: Path) -> None:
    history_figure(tmp_path / "a.png", _history(), title="das/unet")
    history_figure(tmp_path / "b.png", _history(), title="das/unet")
    history_figure(tmp_path / "c.png", _history(seeds=(1, 2)), title="das/unet")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "c.png").read_bytes()
    # A second seed adds its own curves: more ink than one seed.
    assert _drawn_pixels(tmp_path / "c.png") > _drawn_pixels(tmp_path / "a.png")


def test_a_table_it_cannot_draw_is_named(tmp_path: Path) -> None:
    path = tmp_path / HISTORY_FIGURE
    with pytest.raises(ValueError, match=r"history.png: the training history has no column val_miou; it has"):
        history_figure(path, _history().drop(columns="val_miou"), title="das/unet")
    with pytest.raises(ValueError, match="no epoch to draw"):
        history_figure(path, _history().iloc[:0], title="das/unet")
    assert not path.exists()
