"""Synthetic stand-ins for the five tasks, written in the Zenodo record's exact layout and file format.

Each task has a seeded generator `generate(rng, shape, num_classes) -> (inputs, labels)` giving one
sample: float32 inputs scaled to 0..255 (the record's inputs are image-like) and int8 labels with every
class present. Every sample has its own random stream, derived from the seed, the task, the split and
its index, so the data do not depend on the order or the count of samples written.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np

from training.data.layout import (
    INPUT_DTYPE,
    LABEL_DTYPE,
    RAW_SPLITS,
    raw_task_dir,
    sample_paths,
)
from training.data.raw_owner import SYNTHETIC_ORIGIN, write_owned
from training.data.synthetic import crater, das, facies, fault, salt
from training.tasks import TaskSpec

Generator = Callable[[np.random.Generator, tuple[int, int], int], tuple[np.ndarray, np.ndarray]]

GENERATORS: dict[str, Generator] = {
    "seam": facies.generate,
    "salt": salt.generate,
    "crater": crater.generate,
    "das": das.generate,
    "fault": fault.generate,
}


def sample_rng(seed: int, task_key: str, split: str, index: int) -> np.random.Generator:
    """The random stream of one sample."""
    return np.random.default_rng([seed, zlib.crc32(task_key.encode()), RAW_SPLITS.index(split), index])


def generate_sample(task: TaskSpec, split: str, index: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sample `index` of a task's raw split: (inputs float32 (H, W), labels int8 (H, W))."""
    if task.key not in GENERATORS:
        raise KeyError(
            f"no synthetic generator for task {task.key!r}; generators exist for {', '.join(GENERATORS)}"
        )
    return GENERATORS[task.key](sample_rng(seed, task.key, split, index), task.shape, task.num_classes)


def write_synthetic_task(raw_dir: Path, task: TaskSpec, counts: Mapping[str, int], seed: int) -> Path:
    """Write one task's raw splits (`counts` per raw split) under `raw_dir/<key>`: only files whose bytes
    change are written, only files an earlier synthetic run wrote are removed (`raw_owner.write_owned`)."""
    target = raw_task_dir(raw_dir, task)
    samples = [(split, index) for split, count in counts.items() for index in range(count)]
    names = [path.relative_to(target).as_posix() for split, index in samples
             for path in sample_paths(target, task, split, index)]

    def contents() -> Iterator[bytes]:
        for split, index in samples:
            inputs, labels = generate_sample(task, split, index, seed)
            yield inputs.astype(INPUT_DTYPE, copy=False).tobytes()
            yield labels.astype(LABEL_DTYPE, copy=False).tobytes()

    return write_owned(target, SYNTHETIC_ORIGIN, names, contents())


def write_synthetic_dataset(
    raw_dir: Path, tasks: Mapping[str, TaskSpec], train_count: int, test_count: int, seed: int
) -> dict[str, Path]:
    """Write every task's synthetic `train` (train_count samples) and `valid` (test_count samples) splits in
    the Zenodo layout under `raw_dir`; each task folder appears whole or not at all. Returns the folders."""
    if train_count < 1 or test_count < 1:
        raise ValueError(
            f"synthetic data: train_count and test_count must be >= 1, got {train_count}, {test_count}"
        )
    unknown = sorted(set(tasks) - set(GENERATORS))
    if unknown:
        raise KeyError(
            f"no synthetic generator for tasks {unknown}; generators exist for {', '.join(GENERATORS)}"
        )
    counts = {"train": train_count, "valid": test_count}
    return {key: write_synthetic_task(Path(raw_dir), task, counts, seed) for key, task in tasks.items()}
