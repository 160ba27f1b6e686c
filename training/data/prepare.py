"""Training-ready arrays: one contiguous float32 `.npy` of inputs and one uint8 `.npy` of labels per split,
read by memory map, with the train split's normalisation statistics and the split membership.

Each raw file is read (`readinto`) into one reused buffer, checked and counted while it is still in
cache, and appended to the split's `.npy` file. The task folder is built beside the target and renamed
into place, so a failed preparation leaves the previous good one untouched.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

import numpy as np

from training.data.atomic import staged_dir
from training.data.layout import (
    PREPARED_SPLITS,
    SPLITS_FILE,
    STATS_FILE,
    prepared_array_paths,
    prepared_task_dir,
    raw_task_dir,
    sample_paths,
)
from training.data.splits import RAW_SOURCE, SplitPlan, plan_splits
from training.data.stats import RunningMoments
from training.data.validate import DataValidationError, check_inputs, check_labels, check_raw_structure
from training.tasks import TaskSpec


def _read_exact(path: Path, into: np.ndarray, task: TaskSpec, split: str) -> None:
    with path.open("rb", buffering=0) as handle:
        read = handle.readinto(memoryview(into).cast("B"))
        if read != into.nbytes or handle.read(1):
            raise DataValidationError(
                f"task {task.key!r}, split {split!r}, file {path}: size changed while "
                f"reading (expected {into.nbytes} bytes)"
            )


def _open_npy(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> BinaryIO:
    """A new `.npy` file with its header written, ready for the array's bytes in C order."""
    handle = path.open("wb")
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(handle, header)
    return handle


def _copy_split(
    raw_dir: Path,
    out_dir: Path,
    task: TaskSpec,
    split: str,
    indices: list[int],
    moments: RunningMoments | None,
    class_counts: np.ndarray | None,
) -> None:
    """Write `<split>_inputs.npy` and `<split>_labels.npy` from the raw samples `indices`, in that order.

    Each file is read into one reused buffer (it stays in cache while it is checked and counted) and
    appended to the output; two copies per byte, as close to a plain read as Python gets."""
    raw_split = RAW_SOURCE[split]
    input_path, label_path = prepared_array_paths(out_dir, split)
    shape = (len(indices), *task.shape)
    inputs, labels = np.empty(task.shape, np.float32), np.empty(task.shape, np.int8)
    scratch = np.empty(task.shape, dtype=bool)
    with (
        _open_npy(input_path, np.float32, shape) as input_file,
        _open_npy(label_path, np.uint8, shape) as label_file,
    ):
        for index in indices:
            raw_input, raw_label = sample_paths(raw_task_dir(raw_dir, task), task, raw_split, index)
            _read_exact(raw_input, inputs, task, raw_split)
            _read_exact(raw_label, labels, task, raw_split)
            total = check_inputs(task, raw_split, raw_input, inputs)
            counts = check_labels(task, raw_split, raw_label, labels, scratch)
            if moments is not None:
                moments.add(inputs, total)
                class_counts += counts
            input_file.write(inputs.data)
            label_file.write(labels.data)


def _write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=1) + "\n")


def prepare_task(
    raw_dir: Path, prepared_dir: Path, task: TaskSpec, val_fraction: float, split_seed: int
) -> Path:
    """Write `<prepared_dir>/<task.key>/` (train/val/test arrays, stats.json, splits.json) from the raw
    layout under `raw_dir`, replacing any previous preparation only once the new one is complete."""
    counts = {split: check_raw_structure(raw_dir, task, split) for split in ("train", "valid")}
    plan = plan_splits(counts["train"], counts["valid"], val_fraction, split_seed)
    moments = RunningMoments()
    class_counts = np.zeros(task.num_classes, dtype=np.int64)
    target = prepared_task_dir(prepared_dir, task.key)
    with staged_dir(target) as staging:
        for split in PREPARED_SPLITS:
            is_train = split == "train"
            _copy_split(
                raw_dir,
                staging,
                task,
                split,
                plan.indices(split),
                moments if is_train else None,
                class_counts if is_train else None,
            )
        plan.write(staging / SPLITS_FILE)
        _write_json(
            staging / STATS_FILE,
            {
                "task": task.key,
                "shape": list(task.shape),
                "num_classes": task.num_classes,
                "mean": moments.mean,
                "std": moments.std,
                "class_pixel_counts": class_counts.tolist(),
                "class_frequencies": (class_counts / max(class_counts.sum(), 1)).tolist(),
                "counts": {split: len(plan.indices(split)) for split in PREPARED_SPLITS},
            },
        )
    return target


def read_stats(prepared_dir: Path, task_key: str) -> dict:
    """The `stats.json` of a prepared task (mean, std, class frequencies, counts)."""
    path = prepared_task_dir(prepared_dir, task_key) / STATS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run the prepare stage for task {task_key!r} first")
    return json.loads(path.read_text())


def read_split_plan(prepared_dir: Path, task_key: str) -> SplitPlan:
    """The split membership a prepared task was built with."""
    return SplitPlan.read(prepared_task_dir(prepared_dir, task_key) / SPLITS_FILE)
