"""Tiny projects with a declared task: a 3-D SEG-Y survey with a label cube of a few interpreted inlines
(the rest marked unlabelled), or folders of 2-D sections and label images; and the settings declaring
them."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from segy_files import FIRST_INLINE, write_cube

from training.settings import Settings, settings_from_mapping

REPO = Path(__file__).resolve().parents[1]
SHAPE = (12, 40, 32)  # inlines x crosslines x samples; inlines numbered 100..111
LABELLED_INLINES = (100, 101, 102, 104, 105, 107, 108)
UNLABELLED_VALUE = 9
SEGY_SOURCE = {"kind": "segy", "survey": "survey.sgy", "labels": "labels.sgy", "unlabelled": UNLABELLED_VALUE,
               "train": [100, 102], "val": [104, 105], "test": [107, 108], "gap": 1}


def layered_labels(samples: int, traces: int) -> np.ndarray:
    """Three layers down the section, their boundaries tilted across the traces."""
    depth = np.arange(samples)[:, None] + np.arange(traces)[None, :] // 8
    return (depth // 12 % 3).astype(np.uint8)


def write_segy_project(root: Path, order: str = "inline") -> None:
    """`survey.sgy` (traces in `order`) and `labels.sgy` of its geometry, labelled on LABELLED_INLINES
    (inline 101 on half its traces only); the same labels as a volume in `labels.npy`."""
    rng = np.random.default_rng(3)
    labels = np.full(SHAPE, UNLABELLED_VALUE, dtype=np.float32)
    truth = np.stack([layered_labels(SHAPE[2], SHAPE[1]).T] * SHAPE[0])  # (inline, crossline, sample)
    for number in LABELLED_INLINES:
        labels[number - FIRST_INLINE] = truth[number - FIRST_INLINE]
    labels[101 - FIRST_INLINE, SHAPE[1] // 2:] = UNLABELLED_VALUE
    survey = (truth * 900.0 - 900 + rng.normal(0, 150, SHAPE)).astype(np.float32)
    write_cube(root / "survey.sgy", survey, order=order)
    write_cube(root / "labels.sgy", labels, order=order)
    np.save(root / "labels.npy", labels.astype(np.uint8))


def write_folder_project(root: Path) -> None:
    """`sections/<split>/{sections,labels}`: .npy and .dat sections, .png, .npy and .tif labels."""
    rng = np.random.default_rng(4)
    for split, count in (("train", 3), ("val", 1), ("test", 1)):
        for index in range(count):
            traces = 30 + 7 * index
            labels = layered_labels(24, traces)
            section = (labels * 2.0 + rng.normal(0, 0.3, labels.shape)).astype(np.float32)
            labels[:, :3] = 255  # an uninterpreted strip
            folder = root / "sections" / split
            (folder / "sections").mkdir(parents=True, exist_ok=True)
            (folder / "labels").mkdir(parents=True, exist_ok=True)
            name = f"{split}{index}"
            if index == 1:
                section.tofile(folder / "sections" / f"{name}.dat")
            else:
                np.save(folder / "sections" / f"{name}.npy", section)
            suffix = (".png", ".npy", ".tif")[index % 3]
            if suffix == ".npy":
                np.save(folder / "labels" / f"{name}.npy", labels)
            else:
                Image.fromarray(labels).save(folder / "labels" / f"{name}{suffix}")


def declared_params(name: str, source: dict, classes: tuple[str, ...] = ("top", "middle", "bottom"),
                    shape: tuple[int, int] = (28, 28)) -> dict:
    """The repository's params.yaml (demo profile) with only task `name` declared and configured."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["tasks"] = [name]
    raw["declared_tasks"] = {name: {"title": f"Own {name}", "classes": list(classes), "shape": list(shape),
                                    "batch_size": 2, "source": copy.deepcopy(source)}}
    raw["predict"]["amplitude"]["max_traces"] = 10_000
    return raw


def declared_settings(raw: dict) -> Settings:
    return settings_from_mapping(raw)
