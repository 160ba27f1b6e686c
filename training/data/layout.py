"""Where samples live on disk: the record's raw layout and our prepared arrays.

Raw (Zenodo and synthetic alike): `<raw_dir>/<task>/{train,valid}/{input_dir,label_dir}/<i>.dat`, one
sample per file, float32 inputs and int8 labels, i = 0..N-1. The record's `valid` set is our test split.
Prepared: `<prepared_dir>/<task>/{train,val,test}_{inputs,labels}.npy`, `stats.json`, `splits.json`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.tasks import TaskSpec

RAW_SPLITS = ("train", "valid")
PREPARED_SPLITS = ("train", "val", "test")
INPUT_DTYPE = np.dtype("<f4")
LABEL_DTYPE = np.dtype("i1")
STATS_FILE = "stats.json"
SPLITS_FILE = "splits.json"


def raw_task_dir(raw_dir: Path, task: TaskSpec) -> Path:
    """A task's folder in the raw layout; the functions below take this folder (or a staging copy of it)."""
    return Path(raw_dir) / task.key


def _split_dir(task_dir: Path, split: str) -> Path:
    if split not in RAW_SPLITS:
        raise ValueError(f"unknown raw split {split!r}; the record has {', '.join(RAW_SPLITS)}")
    return Path(task_dir) / split


def input_dir(task_dir: Path, task: TaskSpec, split: str) -> Path:
    return _split_dir(task_dir, split) / task.input_dir


def label_dir(task_dir: Path, task: TaskSpec, split: str) -> Path:
    return _split_dir(task_dir, split) / task.label_dir


def sample_paths(task_dir: Path, task: TaskSpec, split: str, index: int) -> tuple[Path, Path]:
    """The input and label file of sample `index` of a raw split."""
    name = f"{index}.dat"
    return input_dir(task_dir, task, split) / name, label_dir(task_dir, task, split) / name


def prepared_task_dir(prepared_dir: Path, task_key: str) -> Path:
    return Path(prepared_dir) / task_key


def prepared_array_paths(task_dir: Path, split: str) -> tuple[Path, Path]:
    """The inputs and labels `.npy` files of one prepared split inside a task's prepared folder."""
    if split not in PREPARED_SPLITS:
        raise ValueError(f"unknown split {split!r}; prepared splits are {', '.join(PREPARED_SPLITS)}")
    return task_dir / f"{split}_inputs.npy", task_dir / f"{split}_labels.npy"
