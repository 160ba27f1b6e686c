"""Training-ready arrays: one contiguous float32 `.npy` of inputs and one uint8 `.npy` of labels per split,
read by memory map, with the train split's normalisation statistics, the split membership and the data
card of every split (counted in the same pass).

Each raw file is read (`readinto`) into one reused buffer, checked and counted while it is still in
cache, and appended to the split's `.npy` file. The task folder is built beside the target and renamed
into place, so a failed preparation leaves the previous good one untouched.

Every file is the same, byte for byte, on every machine: statistics are exact (`stats.RunningMoments`),
the `.npy` header is written here rather than by the installed numpy (whose padding has changed between
versions), and the split is drawn from a stable random stream (`splits.plan_splits`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

import numpy as np

from training.atomic import staged_dir
from training.data.card import CARD_FILE, SplitTally, card_csv, card_table
from training.data.contents import record_contents
from training.data.layout import (
    PREPARED_SPLITS,
    SPLITS_FILE,
    STATS_FILE,
    prepared_array_paths,
    prepared_task_dir,
    raw_task_dir,
    sample_paths,
)
from training.data.raw_owner import SYNTHETIC_ORIGIN, require_origin
from training.data.splits import RAW_SOURCE, SplitPlan, plan_splits
from training.data.stats import NonFiniteError
from training.data.validate import DataValidationError, check_labels, check_raw_structure
from training.errors import MissingInputError
from training.tasks import TaskSpec

NPY_ALIGNMENT = 64
"""The `.npy` header is padded so that the data start at a multiple of this (numpy's ARRAY_ALIGN)."""


def _read_exact(path: Path, into: np.ndarray, task: TaskSpec, split: str) -> None:
    with path.open("rb", buffering=0) as handle:
        read = handle.readinto(memoryview(into).cast("B"))
        if read != into.nbytes or handle.read(1):
            raise DataValidationError(
                f"task {task.key!r}, split {split!r}, file {path}: size changed while "
                f"reading (expected {into.nbytes} bytes)"
            )


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The header of a C-ordered `.npy` file, format version 1.0, as numpy 2.4 writes it (a header dict,
    spaces left for the first axis to grow to 21 digits, padded to 64 bytes), whatever numpy is installed."""
    shape = tuple(int(size) for size in shape)
    descr = np.lib.format.dtype_to_descr(np.dtype(dtype))
    text = f"{{'descr': {descr!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * (21 - len(repr(shape[0]))) if shape else ""
    magic = b"\x93NUMPY\x01\x00"
    padding = -(len(magic) + 2 + len(text) + 1) % NPY_ALIGNMENT
    body = (text + " " * padding + "\n").encode("latin1")
    return magic + len(body).to_bytes(2, "little") + body


def _open_npy(path: Path, dtype: np.dtype, shape: tuple[int, ...]) -> BinaryIO:
    """A new `.npy` file with its header written, ready for the array's bytes in C order."""
    handle = path.open("wb")
    handle.write(npy_header(dtype, shape))
    return handle


def _copy_split(
    raw_dir: Path, out_dir: Path, task: TaskSpec, split: str, indices: list[int], tally: SplitTally
) -> None:
    """Write `<split>_inputs.npy` and `<split>_labels.npy` from the raw samples `indices`, in that order,
    counting each sample into `tally`.

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
            counts = check_labels(task, raw_split, raw_label, labels, scratch)
            try:
                tally.add(inputs, counts)
            except NonFiniteError:
                raise DataValidationError(
                    f"task {task.key!r}, split {raw_split!r}, file {raw_input}: inputs hold NaN or inf"
                ) from None
            input_file.write(inputs.data)
            label_file.write(labels.data)


def _json_bytes(payload: dict) -> bytes:
    return (json.dumps(payload, indent=1) + "\n").encode("utf-8")


def prepare_task(
    raw_dir: Path, prepared_dir: Path, task: TaskSpec, val_fraction: float, split_seed: int,
    origin: str = SYNTHETIC_ORIGIN,
) -> Path:
    """Write `<prepared_dir>/<task.key>/` (train/val/test arrays, stats.json, splits.json, card.csv and
    contents.json, the size and sha256 of each) from the raw layout under `raw_dir`, which `geofm raw` must
    have written from `origin`; a previous preparation is replaced only once the new one is complete, and
    kept untouched when the new one is identical."""
    require_origin(raw_task_dir(raw_dir, task), origin)
    counts = {split: check_raw_structure(raw_dir, task, split) for split in ("train", "valid")}
    plan = plan_splits(counts["train"], counts["valid"], val_fraction, split_seed)
    tallies = {split: SplitTally(task.num_classes) for split in PREPARED_SPLITS}
    target = prepared_task_dir(prepared_dir, task.key)
    with staged_dir(target, keep_identical=True) as staging:
        for split in PREPARED_SPLITS:
            _copy_split(raw_dir, staging, task, split, plan.indices(split), tallies[split])
        train = tallies["train"]
        stats = {
            "task": task.key,
            "shape": list(task.shape),
            "num_classes": task.num_classes,
            "mean": train.moments.mean,
            "std": train.moments.std,
            "class_pixel_counts": train.pixels.tolist(),
            "class_frequencies": train.frequencies.tolist(),
            "counts": {split: len(plan.indices(split)) for split in PREPARED_SPLITS},
        }
        plan.write(staging / SPLITS_FILE)
        (staging / STATS_FILE).write_bytes(_json_bytes(stats))
        (staging / CARD_FILE).write_bytes(card_csv(card_table(tallies)).encode("utf-8"))
        record_contents(staging, origin)
    return target


def read_stats(prepared_dir: Path, task_key: str) -> dict:
    """The `stats.json` of a prepared task (mean, std, class frequencies, counts)."""
    path = prepared_task_dir(prepared_dir, task_key) / STATS_FILE
    if not path.is_file():
        raise MissingInputError(f"{path} not found: run the prepare stage for task {task_key!r} first")
    return json.loads(path.read_text(encoding="utf-8"))


def read_split_plan(prepared_dir: Path, task_key: str) -> SplitPlan:
    """The split membership a prepared task was built with."""
    return SplitPlan.read(prepared_task_dir(prepared_dir, task_key) / SPLITS_FILE)
