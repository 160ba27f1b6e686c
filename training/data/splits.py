"""Leak-free splits: the record's `valid` set is the test split; a seeded validation split comes out of
the record's `train` set. Model selection uses `val`, never `test`."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# Which raw split each prepared split draws its samples from.
RAW_SOURCE = {"train": "train", "val": "train", "test": "valid"}


@dataclass(frozen=True)
class SplitPlan:
    """Raw sample indices of each prepared split (sorted), and how they were drawn."""

    train: list[int]
    val: list[int]
    test: list[int]
    val_fraction: float
    split_seed: int

    def indices(self, split: str) -> list[int]:
        return getattr(self, split)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps({**asdict(self), "raw_source": RAW_SOURCE}, indent=1) + "\n")

    @classmethod
    def read(cls, path: Path) -> SplitPlan:
        recorded = json.loads(Path(path).read_text())
        return cls(
            **{name: recorded[name] for name in ("train", "val", "test", "val_fraction", "split_seed")}
        )


def validation_count(train_count: int, val_fraction: float) -> int:
    """Samples carved out of `train_count` for validation: the rounded fraction, at least one when the
    fraction is positive, never all of them."""
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    if val_fraction == 0:
        return 0
    if train_count < 2:
        raise ValueError(f"cannot carve a validation split out of {train_count} training sample(s)")
    return min(max(round(train_count * val_fraction), 1), train_count - 1)


def plan_splits(train_count: int, test_count: int, val_fraction: float, split_seed: int) -> SplitPlan:
    """The split plan for a task whose record has `train_count` train and `test_count` valid samples."""
    order = np.random.default_rng(split_seed).permutation(train_count)
    held_out = validation_count(train_count, val_fraction)
    return SplitPlan(
        train=sorted(int(i) for i in order[held_out:]),
        val=sorted(int(i) for i in order[:held_out]),
        test=list(range(test_count)),
        val_fraction=float(val_fraction),
        split_seed=int(split_seed),
    )
