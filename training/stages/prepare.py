"""Stage `prepare`: one task split and written as training-ready arrays, with its data card."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training.data.card import CARD_FILE, read_card
from training.data.prepare import prepare_task
from training.data.validate import ValidationSummary, validate_prepared
from training.declared.prepare import prepare_declared
from training.settings import ProjectPaths, Settings


@dataclass(frozen=True)
class PreparedTask:
    """Where one task's prepared arrays landed, and its data card (per split: samples, class shares)."""

    folder: Path
    card: pd.DataFrame


def prepare(settings: Settings, root: Path, task_key: str) -> PreparedTask:
    """Split and write one task's training-ready arrays and its data card (card.csv) beside them."""
    paths = ProjectPaths.of(settings, root)
    task = settings.task(task_key)
    data = settings.data
    if settings.declared(task_key):
        folder = prepare_declared(paths.raw_dir, paths.prepared_dir, task, settings.task_origin(task_key))
    else:
        folder = prepare_task(paths.raw_dir, paths.prepared_dir, task, data.val_fraction, data.split_seed,
                              settings.task_origin(task_key))
    return PreparedTask(folder, read_card(folder / CARD_FILE))


def validate_prepared_data(settings: Settings, root: Path, task_key: str) -> ValidationSummary:
    """Check one task's prepared arrays, stats and splits; raises DataValidationError naming the file."""
    return validate_prepared(ProjectPaths.of(settings, root).prepared_dir, settings.task(task_key))
