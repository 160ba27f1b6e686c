"""Stage `raw` for a declared task: its source checked and its labelled sections written per split into
`<raw_dir>/<task>/` (`training.declared.sections`), owned like a paper task's raw folder."""

from __future__ import annotations

from pathlib import Path

from training.data.raw_owner import write_owned
from training.declared.folder_source import read_folder_source
from training.declared.sections import DeclaredData, raw_files
from training.declared.segy_source import read_segy_source
from training.settings import Settings
from training.settings.declared import SegySource


def read_declared(settings: Settings, root: Path, key: str) -> DeclaredData:
    """The sections of declared task `key`, every refusal raised before any is written."""
    declared, task = settings.declared_tasks[key], settings.task(key)
    if isinstance(declared.source, SegySource):
        return read_segy_source(root, key, declared.source, task.num_classes, settings.predict)
    return read_folder_source(root, declared.source, task.num_classes, settings.predict.amplitude)


def write_declared_raw(settings: Settings, root: Path, raw_dir: Path, key: str) -> Path:
    """Write the raw folder of declared task `key`; returns it."""
    data = read_declared(settings, root, key)
    # What shapes the prepared arrays and the training, so that a change reaches them through the data.
    declared = settings.declared_tasks[key]
    data.record["task"] = {"classes": list(declared.classes), "shape": list(declared.shape),
                           "batch_size": declared.batch_size}
    names, contents = zip(*raw_files(data), strict=True)
    return write_owned(Path(raw_dir) / key, settings.task_origin(key), list(names), contents)
