"""A declared task's 3-D survey: its labelled inlines (and crosslines, cut at the blocks) of each split.

Everything that can be refused is checked before a section is read: the label cube's geometry against the
survey's, every block inside the survey's inlines, every label value a class id or the unlabelled value.
A crossline crosses every block, so it is cut into one piece per block: a pixel lies in one split only,
and the inlines of the gaps in none.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import numpy as np

from training.declared.labels import class_ids
from training.declared.sections import DeclaredData, DeclaredSourceError, Section
from training.settings.declared import SegySource
from training.settings.predict import PredictSettings
from training.survey.amplitude import AmplitudeSettings, survey_clip
from training.survey.readers import ReadOptions, open_survey
from training.survey.volumes import Survey
from training.tasks import RECORD_INPUT_RANGE, UNLABELLED


def _read_options(predict: PredictSettings) -> ReadOptions:
    return ReadOptions(inline_byte=predict.inline_byte, crossline_byte=predict.crossline_byte,
                       endian=predict.endian, duplicates=predict.duplicates)


def _check_geometry(survey: Survey, labels: Survey) -> None:
    if survey.ndim != 3:
        raise DeclaredSourceError(f"{survey.path}: a declared segy task needs a 3-D survey, not a 2-D line "
                                  "(declare 2-D sections with `kind: folders`)")
    if labels.shape != survey.shape:
        raise DeclaredSourceError(f"{labels.path}: the labels hold {_size(labels.shape)} but the survey "
                                  f"{survey.path} holds {_size(survey.shape)}: give labels of its geometry")
    if labels.path.suffix.lower() != ".npy":
        for axis in ("inline", "crossline"):
            if not np.array_equal(labels.geometry.numbers(axis), survey.geometry.numbers(axis)):
                raise DeclaredSourceError(f"{labels.path}: its {axis} numbers differ from those of the "
                                          f"survey {survey.path}: give labels of its geometry")


def _size(shape: tuple[int, int, int]) -> str:
    return f"{shape[0]} inlines x {shape[1]} crosslines x {shape[2]} samples"


def block_indices(survey: Survey, source: SegySource, key: str) -> dict[str, np.ndarray]:
    """The inline indices of each split's block; a block reaching outside the survey is refused."""
    numbers = survey.geometry.numbers("inline")
    low, high = int(numbers.min()), int(numbers.max())
    indices = {}
    for split, (first, last) in source.blocks.items():
        if first < low or last > high:
            raise DeclaredSourceError(f"declared_tasks.{key}.source.{split}: inlines [{first}, {last}] reach "
                                      f"outside the survey {survey.path}, whose inlines are {low}..{high}")
        indices[split] = np.flatnonzero((numbers >= first) & (numbers <= last))
    return indices


def _label_section(labels: Survey, survey: Survey, axis: str, index: int, num_classes: int,
                   source: SegySource) -> np.ndarray:
    number = survey.geometry.numbers(axis)[index]
    ids = class_ids(labels.section(axis, index), num_classes, source.unlabelled,
                    f"{labels.path}, {axis} {number}")
    if survey.dead is not None:
        dead = survey.dead[index] if axis == "inline" else survey.dead[:, index]
        ids[:, dead] = UNLABELLED
    return ids


def _sections(survey: Survey, labels: Survey, source: SegySource, rows: np.ndarray,
              num_classes: int) -> list[Section]:
    inlines, crosslines = survey.geometry.numbers("inline"), survey.geometry.numbers("crossline")
    found = []
    if source.sections in ("inline", "both"):
        for index in rows:
            ids = _label_section(labels, survey, "inline", index, num_classes, source)
            if (ids != UNLABELLED).any():
                found.append(Section(f"inline-{inlines[index]}", survey.section("inline", index), ids))
    if source.sections in ("crossline", "both") and len(rows):
        for index in range(len(crosslines)):
            ids = _label_section(labels, survey, "crossline", index, num_classes, source)[:, rows]
            if (ids != UNLABELLED).any():
                name = f"crossline-{crosslines[index]}-inlines-{inlines[rows[0]]}-{inlines[rows[-1]]}"
                found.append(Section(name, survey.section("crossline", index)[:, rows], ids))
    return found


def read_segy_source(root: Path, key: str, source: SegySource, num_classes: int,
                     predict: PredictSettings) -> DeclaredData:
    """The labelled sections of each split of declared task `key`, with the survey's amplitude clip (as
    `geofm predict` computes it, from `predict.amplitude`) and geometry to record."""
    with ExitStack() as stack:
        survey = open_survey(Path(root) / source.survey, _read_options(predict))
        stack.callback(survey.close)
        labels = open_survey(Path(root) / source.labels, _read_options(predict))
        stack.callback(labels.close)
        _check_geometry(survey, labels)
        blocks = block_indices(survey, source, key)
        for index in range(survey.shape[0]):  # every label value checked before a section is written
            _label_section(labels, survey, "inline", index, num_classes, source)
        amplitude = predict.amplitude
        clip = survey_clip(survey, AmplitudeSettings(amplitude.percentiles, amplitude.target_range,
                                                     amplitude.max_traces, amplitude.seed))
        splits = {split: _sections(survey, labels, source, rows, num_classes)
                  for split, rows in blocks.items()}
        geometry = survey.geometry
        record = {
            "kind": "segy", "survey": source.survey, "labels": source.labels,
            "sections_from": source.sections,
            "blocks": {split: list(block) for split, block in source.blocks.items()}, "gap": source.gap,
            "geometry": {"inlines": [int(geometry.row_numbers[0]), int(geometry.row_numbers[-1])],
                         "crosslines": [int(geometry.column_numbers[0]), int(geometry.column_numbers[-1])],
                         "shape": list(survey.shape)},
            "amplitude": None if clip is None else {
                "percentiles": list(clip.percentiles), "clip_low": clip.low, "clip_high": clip.high,
                "target_range": list(amplitude.target_range or RECORD_INPUT_RANGE),
                "traces_sampled": clip.traces_sampled, "traces_total": clip.traces_total, "seed": clip.seed},
        }
    for split, sections in splits.items():
        if not sections:
            raise DeclaredSourceError(f"declared_tasks.{key}.source.{split}: no labelled {source.sections} "
                                      f"section lies in inlines {list(source.blocks[split])}")
    return DeclaredData(splits, record)
