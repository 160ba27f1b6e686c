"""The raw folder of a declared task checked: every section of `source.json` present, its amplitudes
finite, its labels class ids or `UNLABELLED`, amplitudes and labels of one size."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from training.data.layout import PREPARED_SPLITS
from training.data.validate import DataValidationError, ValidationSummary, check_labels
from training.declared.sections import read_sections
from training.tasks import TaskSpec


def validate_declared_raw(raw_dir: Path, task: TaskSpec) -> ValidationSummary:
    """Check every raw section of declared task `task`; DataValidationError names the section at fault."""
    task_dir, counts, checked = Path(raw_dir) / task.key, {}, 0
    for split in PREPARED_SPLITS:
        counts[split] = 0
        for section in read_sections(task_dir, split):
            where = task_dir / split / section.name
            if section.amplitudes.shape != section.labels.shape:
                raise DataValidationError(f"task {task.key!r}, split {split!r}, section {where}: amplitudes "
                                          f"{section.amplitudes.shape} and labels {section.labels.shape}")
            if not np.isfinite(section.amplitudes).all():
                raise DataValidationError(f"task {task.key!r}, split {split!r}, section {where}: amplitudes "
                                          "hold NaN or inf")
            check_labels(task, split, where, section.labels)
            counts[split] += 1
            checked += section.amplitudes.nbytes + section.labels.nbytes
    return ValidationSummary(task.key, "raw", counts, checked)
