"""Stage `raw`: the Zenodo record (downloaded and verified), or its synthetic stand-in, and the labelled
sections of every declared task, then validated."""

from __future__ import annotations

from pathlib import Path

from training.data.raw_owner import claim
from training.data.synthetic import write_synthetic_dataset
from training.data.validate import ValidationSummary, validate_raw
from training.data.zenodo import download_and_extract
from training.declared.raw import read_declared, write_declared_raw
from training.declared.validate import validate_declared_raw
from training.settings import ProjectPaths, Settings


def materialize_raw(settings: Settings, root: Path) -> Path:
    """Write (synthetic) or fetch (zenodo) the raw data of every configured paper task, and the labelled
    sections of every declared task; returns the raw folder."""
    data, raw_dir = settings.data, ProjectPaths.of(settings, root).raw_dir
    for key in settings.task_specs:  # every folder checked before any is written
        claim(raw_dir / key, settings.task_origin(key))
    declared = [key for key in settings.task_specs if settings.declared(key)]
    for key in declared:  # every declared source checked before any is written
        read_declared(settings, root, key)
    paper = {key: task for key, task in settings.task_specs.items() if key not in declared}
    if paper and data.source == "synthetic":
        write_synthetic_dataset(raw_dir, paper, data.synthetic.train_count, data.synthetic.test_count,
                                data.synthetic.seed)
    elif paper:
        download_and_extract(data.record, raw_dir, list(paper))
    for key in declared:
        write_declared_raw(settings, root, raw_dir, key)
    return raw_dir


def validate_raw_data(settings: Settings, root: Path) -> dict[str, ValidationSummary]:
    """Check every raw file of every configured task; raises DataValidationError naming the bad file."""
    raw_dir = ProjectPaths.of(settings, root).raw_dir
    return {key: (validate_declared_raw if settings.declared(key) else validate_raw)(raw_dir, task)
            for key, task in settings.task_specs.items()}
