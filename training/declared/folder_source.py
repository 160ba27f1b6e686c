"""A declared task's folders of 2-D sections: `<path>/<split>/sections/<name>.{npy,dat}` and the label
image of the same name in `<path>/<split>/labels/` (`.npy`, `.dat`, `.png`, `.tif`). Every pair is checked
(a label for each section, the same size, class ids only) before anything is written; amplitudes are
clipped at percentiles of all sections together, as `geofm predict` clips a whole survey."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from training.data.layout import PREPARED_SPLITS
from training.declared.labels import class_ids
from training.declared.sections import DeclaredData, DeclaredSourceError, Section
from training.settings.declared import FolderSource
from training.settings.predict import AmplitudeSection
from training.survey.amplitude import clip_values
from training.tasks import RECORD_INPUT_RANGE

SECTION_SUFFIXES = (".npy", ".dat")
LABEL_SUFFIXES = (".npy", ".dat", ".png", ".tif", ".tiff")


def _read(path: Path, dtype: np.dtype, shape: tuple[int, int] | None) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = np.load(path, allow_pickle=False)
    elif suffix == ".dat":
        if shape is None:
            raise DeclaredSourceError(f"{path}: a .dat file has no header: give source.dat_shape "
                                      "[samples, traces]")
        array = np.fromfile(path, dtype=dtype)
        if array.size != shape[0] * shape[1]:
            raise DeclaredSourceError(f"{path}: {array.size} values, but source.dat_shape {list(shape)} "
                                      f"needs {shape[0] * shape[1]}")
        array = array.reshape(shape)
    else:
        array = np.asarray(Image.open(path))
    if array.ndim != 2:
        raise DeclaredSourceError(f"{path}: expected a 2-D section (samples, traces), got shape "
                                  f"{array.shape}")
    return array


def _files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        raise DeclaredSourceError(f"{folder}: folder not found (a folder task holds <split>/sections and "
                                  "<split>/labels for train, val and test)")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in suffixes:
            if path.stem in files:
                raise DeclaredSourceError(f"{path}: {files[path.stem].name} has the same name; keep one")
            files[path.stem] = path
    return files


def _split(folder: Path, source: FolderSource, num_classes: int) -> list[Section]:
    sections = _files(folder / "sections", SECTION_SUFFIXES)
    labels = _files(folder / "labels", LABEL_SUFFIXES)
    if not sections:
        raise DeclaredSourceError(f"{folder / 'sections'}: no section (.npy, .dat) in it")
    found = []
    for name, path in sections.items():
        if name not in labels:
            raise DeclaredSourceError(f"{path}: no label file {name}.* in {folder / 'labels'}")
        amplitudes = _read(path, np.dtype("<f4"), source.dat_shape).astype(np.float32)
        values = _read(labels[name], np.dtype(np.uint8), source.dat_shape)
        if values.shape != amplitudes.shape:
            raise DeclaredSourceError(f"{labels[name]}: labels of {values.shape[0]}x{values.shape[1]} for a "
                                      f"section of {amplitudes.shape[0]}x{amplitudes.shape[1]} ({path})")
        found.append(Section(name, amplitudes, class_ids(values, num_classes, source.unlabelled,
                                                         str(labels[name]))))
    return found


def read_folder_source(root: Path, source: FolderSource, num_classes: int,
                       amplitude: AmplitudeSection) -> DeclaredData:
    """The sections of each split, with the amplitude clip of all of them to record."""
    folder = Path(root) / source.path
    splits = {split: _split(folder / split, source, num_classes) for split in PREPARED_SPLITS}
    clip = None
    if amplitude.percentiles is not None:
        values = np.concatenate([section.amplitudes.reshape(-1) for sections in splits.values()
                                 for section in sections])
        low, high = clip_values(values, amplitude.percentiles, str(folder), "sections")
        clip = {"percentiles": list(amplitude.percentiles), "clip_low": low, "clip_high": high,
                "target_range": list(amplitude.target_range or RECORD_INPUT_RANGE)}
    return DeclaredData(splits, {"kind": "folders", "path": source.path, "amplitude": clip})
