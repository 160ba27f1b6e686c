"""Stage `raw`: the Zenodo record (downloaded and verified), or its synthetic stand-in, then validated."""

from __future__ import annotations

from pathlib import Path

from training.data.raw_owner import claim, data_origin
from training.data.synthetic import write_synthetic_dataset
from training.data.validate import ValidationSummary, validate_raw
from training.data.zenodo import download_and_extract
from training.settings import ProjectPaths, Settings


def materialize_raw(settings: Settings, root: Path) -> Path:
    """Write (synthetic) or fetch (zenodo) the raw data of every configured task; returns the raw folder."""
    data, raw_dir = settings.data, ProjectPaths.of(settings, root).raw_dir
    for key in settings.task_specs:  # every folder checked before any is written
        claim(raw_dir / key, data_origin(data.source, data.record))
    if data.source == "synthetic":
        write_synthetic_dataset(raw_dir, settings.task_specs, data.synthetic.train_count,
                                data.synthetic.test_count, data.synthetic.seed)
    else:
        download_and_extract(data.record, raw_dir, list(settings.task_specs))
    return raw_dir


def validate_raw_data(settings: Settings, root: Path) -> dict[str, ValidationSummary]:
    """Check every raw file of every configured task; raises DataValidationError naming the bad file."""
    raw_dir = ProjectPaths.of(settings, root).raw_dir
    return {key: validate_raw(raw_dir, task) for key, task in settings.task_specs.items()}
