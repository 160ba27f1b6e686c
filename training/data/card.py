"""Data cards: one row per split with its sample count, class pixel frequencies and input value range,
mean and standard deviation. Preparation writes the card of the prepared splits (`card.csv`) with the
arrays, in the same pass; `data_card` computes one from data on disk, raw or prepared. The orchestration
layer shows the table as metadata and logs it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from training.data.dataset import PreparedDataset, RawDataset
from training.data.layout import PREPARED_SPLITS, RAW_SPLITS
from training.data.stats import NonFiniteError, RunningMoments, class_counts
from training.data.validate import DataValidationError
from training.lookup import lookup
from training.tasks import TaskSpec

CARD_FILE = "card.csv"
"""The card of a prepared task, beside its arrays."""

SplitSamples = Iterator[tuple[str, Callable[[int], tuple[np.ndarray, np.ndarray]], int]]


class SplitTally:
    """One card row in the making: samples, class pixels and input moments, added sample by sample."""

    def __init__(self, num_classes: int) -> None:
        self.samples = 0
        self.pixels = np.zeros(num_classes, dtype=np.int64)
        self.moments = RunningMoments()

    def add(self, inputs: np.ndarray, pixels: np.ndarray) -> None:
        """Count one sample: its float32 inputs and its pixels per class."""
        self.moments.add(inputs)
        self.pixels += pixels
        self.samples += 1

    @property
    def frequencies(self) -> np.ndarray:
        return self.pixels / max(int(self.pixels.sum()), 1)

    def row(self) -> dict[str, int | float]:
        return {
            "samples": self.samples,
            **{f"class_{label}_fraction": float(share) for label, share in enumerate(self.frequencies)},
            "input_min": self.moments.minimum,
            "input_max": self.moments.maximum,
            "input_mean": self.moments.mean,
            "input_std": self.moments.std,
        }


def card_table(tallies: Mapping[str, SplitTally]) -> pd.DataFrame:
    """The card: one row per split, in the order of `tallies`."""
    rows = [{"split": split, **tally.row()} for split, tally in tallies.items()]
    return pd.DataFrame(rows).set_index("split")


def card_csv(card: pd.DataFrame) -> str:
    """The card as CSV text, the same on every machine: floats in Python's shortest round-trip form
    (`repr`), whatever pandas' own formatting, and `\\n` line ends."""
    return card.to_csv(float_format=lambda value: repr(float(value)), lineterminator="\n")


def read_card(path: Path) -> pd.DataFrame:
    """A card written with `card_csv`."""
    return pd.read_csv(path, index_col="split")


def _prepared_splits(root: Path, task: TaskSpec) -> SplitSamples:
    for split in PREPARED_SPLITS:
        dataset = PreparedDataset(root, task.key, split, flip_pairs=False)
        yield split, dataset.read_sample, dataset.num_samples


def _raw_splits(root: Path, task: TaskSpec) -> SplitSamples:
    for split in RAW_SPLITS:
        dataset = RawDataset(root, task, split, flip_pairs=False)
        yield split, dataset.read_sample, dataset.num_samples


DATA_STAGES: dict[str, Callable[[Path, TaskSpec], SplitSamples]] = {
    "prepared": _prepared_splits,
    "raw": _raw_splits,
}


def data_card(root: Path, task: TaskSpec, stage: str = "prepared") -> pd.DataFrame:
    """The card of a task whose data lie under `root` (`prepared_dir` or `raw_dir`, as `stage` says)."""
    tallies = {}
    for split, read_sample, count in lookup("data stage", stage, DATA_STAGES)(Path(root), task):
        tally = tallies[split] = SplitTally(task.num_classes)
        scratch = np.empty(task.shape, dtype=bool)
        for index in range(count):
            inputs, labels = read_sample(index)
            try:
                tally.add(inputs, class_counts(labels, task.num_classes, scratch))
            except NonFiniteError:
                raise DataValidationError(
                    f"task {task.key!r}, split {split!r}, sample {index} under {root}: inputs hold NaN or inf"
                ) from None
    return card_table(tallies)
