"""Stage `prepare` for a declared task: its raw sections mapped to the training range (the clip `raw`
recorded, applied by the same code as `geofm predict`), cut into tiles of the task's size and written as
the same training-ready arrays as a paper task's (`training.data.prepare`), with the data card per split,
the section and tile of every sample (`splits.json`) and the source's geometry and amplitude mapping
(`source.json`)."""

from __future__ import annotations

import json
from pathlib import Path

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
)
from training.data.prepare import npy_header
from training.data.raw_owner import require_origin
from training.data.stats import class_counts
from training.declared.sections import SOURCE_FILE, read_sections, read_source_record
from training.declared.tiles import tiles
from training.survey.amplitude import AmplitudeMapping
from training.tasks import TaskSpec


def _mapping(record: dict) -> AmplitudeMapping | None:
    clip = record.get("amplitude")
    if clip is None:
        return None
    return AmplitudeMapping(percentiles=tuple(clip["percentiles"]), clip_low=clip["clip_low"],
                            clip_high=clip["clip_high"], target_low=clip["target_range"][0],
                            target_high=clip["target_range"][1], traces_sampled=clip.get("traces_sampled", 0),
                            traces_total=clip.get("traces_total", 0), seed=clip.get("seed", 0))


def _split_tiles(raw_task: Path, split: str, task: TaskSpec,
                 mapping: AmplitudeMapping | None) -> tuple[list[str], np.ndarray, np.ndarray]:
    names, inputs, labels = [], [], []
    for section in read_sections(raw_task, split):
        amplitudes = section.amplitudes if mapping is None else mapping.apply(section.amplitudes)
        for (row, column), tile_inputs, tile_labels in tiles(amplitudes, section.labels, task.shape):
            names.append(f"{section.name}@{row},{column}")
            inputs.append(tile_inputs)
            labels.append(tile_labels)
    empty = (0, *task.shape)
    return (names, np.stack(inputs).astype(np.float32) if inputs else np.empty(empty, np.float32),
            np.stack(labels).astype(np.uint8) if labels else np.empty(empty, np.uint8))


def _write_npy(path: Path, array: np.ndarray) -> None:
    path.write_bytes(npy_header(array.dtype, array.shape) + np.ascontiguousarray(array).tobytes())


def prepare_declared(raw_dir: Path, prepared_dir: Path, task: TaskSpec, origin: str) -> Path:
    """Write `<prepared_dir>/<task.key>/` from the raw sections `raw` wrote from `origin`."""
    raw_task = Path(raw_dir) / task.key
    require_origin(raw_task, origin)
    record = read_source_record(raw_task)
    mapping = _mapping(record)
    tallies = {split: SplitTally(task.num_classes) for split in PREPARED_SPLITS}
    members, unlabelled = {}, {}
    target = prepared_task_dir(prepared_dir, task.key)
    with staged_dir(target, keep_identical=True) as staging:
        for split in PREPARED_SPLITS:
            names, inputs, labels = _split_tiles(raw_task, split, task, mapping)
            for sample_inputs, sample_labels in zip(inputs, labels, strict=True):
                tallies[split].add(sample_inputs, class_counts(sample_labels, task.num_classes))
            members[split] = names
            unlabelled[split] = float(1 - tallies[split].pixels.sum() / max(labels.size, 1))
            input_path, label_path = prepared_array_paths(staging, split)
            _write_npy(input_path, inputs)
            _write_npy(label_path, labels)
        train = tallies["train"]
        stats = {
            "task": task.key, "shape": list(task.shape), "num_classes": task.num_classes,
            "mean": train.moments.mean, "std": train.moments.std,
            "class_pixel_counts": train.pixels.tolist(), "class_frequencies": train.frequencies.tolist(),
            "counts": {split: len(members[split]) for split in PREPARED_SPLITS},
        }
        card = card_table(tallies)
        card["unlabelled_fraction"] = [unlabelled[split] for split in PREPARED_SPLITS]
        (staging / STATS_FILE).write_text(json.dumps(stats, indent=1) + "\n", encoding="utf-8")
        (staging / SPLITS_FILE).write_text(json.dumps(members, indent=1) + "\n", encoding="utf-8")
        (staging / SOURCE_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        (staging / CARD_FILE).write_text(card_csv(card), encoding="utf-8")
        record_contents(staging, origin)
    return target
