"""Checks that a task's data is what the task says it is, raw (Zenodo layout) or prepared (`.npy`).

Every failure raises `DataValidationError` naming the task, the split and the file at fault. The checks:
sample counts per split, indices 0..N-1 with no gap, each file's size against the task's shape (H*W*4
bytes of float32 inputs, H*W bytes of int8 labels), labels within [0, classes), no NaN or inf in inputs.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from training.data.layout import (
    INPUT_DTYPE,
    LABEL_DTYPE,
    PREPARED_SPLITS,
    RAW_SPLITS,
    SPLITS_FILE,
    STATS_FILE,
    input_dir,
    label_dir,
    prepared_array_paths,
    prepared_task_dir,
    raw_task_dir,
    sample_paths,
)
from training.data.stats import class_counts
from training.errors import GeofmError
from training.tasks import TaskSpec


class DataValidationError(GeofmError, ValueError):
    """The data of a task does not match the task; the message names task, split and file."""


@dataclass(frozen=True)
class ValidationSummary:
    """What was checked: samples per split and the bytes read."""

    task: str
    stage: str
    counts: dict[str, int] = field(default_factory=dict)
    bytes_checked: int = 0


def _fail(task: TaskSpec, split: str, path: Path, problem: str) -> DataValidationError:
    return DataValidationError(f"task {task.key!r}, split {split!r}, file {path}: {problem}")


def _indices(folder: Path, task: TaskSpec, split: str) -> int:
    """The sample count of a folder of `<i>.dat` files; an error unless the names are exactly 0..N-1."""
    if not folder.is_dir():
        raise _fail(task, split, folder, "folder is missing")
    names = [entry.name for entry in os.scandir(folder) if entry.name.endswith(".dat")]
    stems = sorted(int(name[:-4]) for name in names if name[:-4].isdigit())
    if len(stems) != len(names):
        odd = sorted(set(names) - {f"{stem}.dat" for stem in stems})
        raise _fail(task, split, folder / odd[0], "file name is not <index>.dat")
    if not stems:
        raise _fail(task, split, folder, "holds no <index>.dat samples")
    missing = sorted(set(range(len(stems))) - set(stems))
    if missing:
        raise _fail(
            task, split, folder / f"{missing[0]}.dat", f"is missing; indices must run 0..{len(stems) - 1}"
        )
    return len(stems)


def check_raw_structure(raw_dir: Path, task: TaskSpec, split: str, expected_count: int | None = None) -> int:
    """Check one raw split without reading values: contiguous indices, equal input and label counts, the
    expected count if given, each file's byte size. Returns the sample count."""
    task_dir = raw_task_dir(raw_dir, task)
    count = _indices(input_dir(task_dir, task, split), task, split)
    label_count = _indices(label_dir(task_dir, task, split), task, split)
    if label_count != count:
        raise _fail(
            task, split, label_dir(task_dir, task, split), f"holds {label_count} labels for {count} inputs"
        )
    if expected_count is not None and count != expected_count:
        raise _fail(
            task, split, input_dir(task_dir, task, split), f"holds {count} samples, expected {expected_count}"
        )
    pixels = task.shape[0] * task.shape[1]
    for index in range(count):
        for path, dtype in zip(
            sample_paths(task_dir, task, split, index), (INPUT_DTYPE, LABEL_DTYPE), strict=True
        ):
            size = path.stat().st_size
            if size != pixels * dtype.itemsize:
                raise _fail(
                    task,
                    split,
                    path,
                    f"is {size} bytes, expected {pixels * dtype.itemsize} "
                    f"({task.shape[0]}x{task.shape[1]} {dtype.name})",
                )
    return count


def check_inputs(task: TaskSpec, split: str, path: Path, inputs: np.ndarray) -> float:
    """The float64 sum of `inputs`; an error if any is NaN or inf. (A float64 sum of float32 values cannot
    overflow, so it is finite exactly when every value is: one pass, no temporary array.)"""
    total = float(np.sum(inputs, dtype=np.float64))
    if not math.isfinite(total):
        raise _fail(task, split, path, "inputs hold NaN or inf")
    return total


def check_labels(
    task: TaskSpec, split: str, path: Path, labels: np.ndarray, scratch: np.ndarray | None = None
) -> np.ndarray:
    """Pixels per class of `labels`; an error naming a value outside [0, classes) (other than the task's
    unlabelled value) if there is one."""
    counts = class_counts(labels, task.num_classes, scratch)
    unlabelled = 0 if task.unlabelled is None else np.count_nonzero(labels == task.unlabelled)
    if counts.sum() + unlabelled != labels.size:
        flat = labels.reshape(-1).astype(np.int64)
        bad = flat[(flat < 0) | (flat >= task.num_classes)][0]
        raise _fail(task, split, path, f"label value {bad} outside [0, {task.num_classes})")
    return counts


def validate_raw(
    raw_dir: Path, task: TaskSpec, expected_counts: Mapping[str, int] | None = None
) -> ValidationSummary:
    """Check every file of a task's raw `train` and `valid` splits, values included."""
    task_dir = raw_task_dir(raw_dir, task)
    counts, checked = {}, 0
    for split in RAW_SPLITS:
        counts[split] = check_raw_structure(raw_dir, task, split, (expected_counts or {}).get(split))
        for index in range(counts[split]):
            input_path, label_path = sample_paths(task_dir, task, split, index)
            check_inputs(task, split, input_path, np.fromfile(input_path, INPUT_DTYPE))
            check_labels(task, split, label_path, np.fromfile(label_path, LABEL_DTYPE))
            checked += input_path.stat().st_size + label_path.stat().st_size
    return ValidationSummary(task.key, "raw", counts, checked)


def _check_array(task: TaskSpec, split: str, path: Path, dtype: np.dtype) -> np.ndarray:
    if not path.is_file():
        raise _fail(task, split, path, "is missing; run the prepare stage")
    try:
        array = np.load(path, mmap_mode="r")
    except ValueError as error:
        raise _fail(task, split, path, f"is not a readable .npy array ({error})") from None
    if array.dtype != dtype or array.ndim != 3 or array.shape[1:] != tuple(task.shape):
        raise _fail(
            task,
            split,
            path,
            f"holds {array.dtype} {array.shape}, expected {dtype} (N, {task.shape[0]}, {task.shape[1]})",
        )
    return array


def validate_prepared(prepared_dir: Path, task: TaskSpec) -> ValidationSummary:
    """Check a task's prepared arrays, `stats.json` and `splits.json` against the task and each other."""
    task_dir = prepared_task_dir(prepared_dir, task.key)
    for name in (STATS_FILE, SPLITS_FILE):
        if not (task_dir / name).is_file():
            raise _fail(task, "all", task_dir / name, "is missing; run the prepare stage")
    membership = json.loads((task_dir / SPLITS_FILE).read_text())
    counts, checked = {}, 0
    for split in PREPARED_SPLITS:
        input_path, label_path = prepared_array_paths(task_dir, split)
        inputs = _check_array(task, split, input_path, np.dtype(np.float32))
        labels = _check_array(task, split, label_path, np.dtype(np.uint8))
        if len(inputs) != len(labels) or len(inputs) != len(membership[split]):
            raise _fail(
                task,
                split,
                label_path,
                f"{len(labels)} labels, {len(inputs)} inputs and "
                f"{len(membership[split])} indices in {SPLITS_FILE} disagree",
            )
        check_inputs(task, split, input_path, inputs)
        for row in labels:
            check_labels(task, split, label_path, row)
        counts[split] = len(inputs)
        checked += inputs.nbytes + labels.nbytes
    return ValidationSummary(task.key, "prepared", counts, checked)
