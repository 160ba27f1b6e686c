"""Leak-free splits: the record's `valid` set is the test split; a seeded validation split comes out of
the record's `train` set. Model selection uses `val`, never `test`.

The validation split is drawn from the raw stream of numpy's PCG64, which numpy guarantees to stay the same
across versions, rather than from `Generator.permutation`, whose algorithm may change in a numpy release."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from training.errors import GeofmError

# Which raw split each prepared split draws its samples from.
RAW_SOURCE = {"train": "train", "val": "train", "test": "valid"}


class SplitError(GeofmError, ValueError):
    """A validation fraction that cannot give both a training and a validation split."""


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
        text = json.dumps({**asdict(self), "raw_source": RAW_SOURCE}, indent=1) + "\n"
        path.write_bytes(text.encode("utf-8"))

    @classmethod
    def read(cls, path: Path) -> SplitPlan:
        recorded = json.loads(Path(path).read_text())
        return cls(
            **{name: recorded[name] for name in ("train", "val", "test", "val_fraction", "split_seed")}
        )


def validation_count(train_count: int, val_fraction: float) -> int:
    """Samples carved out of `train_count` for validation: the rounded fraction, at least one, never all."""
    if not 0 < val_fraction < 1:
        raise SplitError(
            f"val_fraction (data.val_fraction) must be above 0 and below 1, got {val_fraction}: model "
            "selection needs a validation split and training needs the rest"
        )
    if train_count < 2:
        raise SplitError(f"cannot carve a validation split out of {train_count} training sample(s)")
    return min(max(round(train_count * val_fraction), 1), train_count - 1)


def seeded_permutation(count: int, seed: int) -> np.ndarray:
    """A permutation of 0..count-1 determined by `seed` alone, on every numpy version: the order of `count`
    raw 64-bit draws of PCG64 (ties, all but impossible, keep index order)."""
    keys = np.random.PCG64(seed).random_raw(count)
    return np.argsort(keys, kind="stable")


def plan_splits(train_count: int, test_count: int, val_fraction: float, split_seed: int) -> SplitPlan:
    """The split plan for a task whose record has `train_count` train and `test_count` valid samples."""
    order = seeded_permutation(train_count, split_seed)
    held_out = validation_count(train_count, val_fraction)
    return SplitPlan(
        train=sorted(int(i) for i in order[held_out:]),
        val=sorted(int(i) for i in order[:held_out]),
        test=list(range(test_count)),
        val_fraction=float(val_fraction),
        split_seed=int(split_seed),
    )
