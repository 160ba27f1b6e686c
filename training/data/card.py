"""Data cards: one row per split with its sample count, class pixel frequencies and input value range,
mean and standard deviation. The orchestration layer shows the table as metadata and logs it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.dataset import PreparedDataset, RawDataset
from training.data.layout import PREPARED_SPLITS, RAW_SPLITS
from training.data.stats import RunningMoments, class_counts
from training.tasks import TaskSpec

SplitSamples = Iterator[tuple[str, Callable[[int], tuple[np.ndarray, np.ndarray]], int]]


def _prepared_splits(root: Path, task: TaskSpec) -> SplitSamples:
    for split in PREPARED_SPLITS:
        dataset = PreparedDataset(root, task.key, split, flip_pairs=False)
        yield split, dataset.read_sample, dataset.num_samples


def _raw_splits(root: Path, task: TaskSpec) -> SplitSamples:
    for split in RAW_SPLITS:
        dataset = RawDataset(root, task, split, flip_pairs=False)
        yield split, dataset.read_sample, dataset.num_samples


LAYOUTS: dict[str, Callable[[Path, TaskSpec], SplitSamples]] = {
    "prepared": _prepared_splits,
    "raw": _raw_splits,
}


def data_card(root: Path, task: TaskSpec, layout: str = "prepared") -> pd.DataFrame:
    """The card of a task whose data lie under `root` (`prepared_dir` or `raw_dir`, as `layout` says)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown data layout {layout!r}; known layouts: {', '.join(LAYOUTS)}")
    rows = []
    for split, read_sample, count in LAYOUTS[layout](Path(root), task):
        moments = RunningMoments()
        pixels = np.zeros(task.num_classes, dtype=np.int64)
        scratch = np.empty(task.shape, dtype=bool)
        for index in range(count):
            inputs, labels = read_sample(index)
            moments.add(inputs)
            pixels += class_counts(labels, task.num_classes, scratch)
        frequencies = pixels / max(pixels.sum(), 1)
        rows.append(
            {
                "split": split,
                "samples": count,
                **{f"class_{label}_fraction": float(share) for label, share in enumerate(frequencies)},
                "input_min": moments.minimum,
                "input_max": moments.maximum,
                "input_mean": moments.mean,
                "input_std": moments.std,
            }
        )
    return pd.DataFrame(rows).set_index("split")
