"""Surveys as they come from the field, written with segyio: a single crossline (segmented along it, one
layout for every single line), little-endian files, prestack offsets and shot gathers (refused in one
sentence, also as a 2-D line), irregular grids (missing traces dead, masked and never counted; duplicates
refused or resolved by --duplicates), files of headers only and grids too sparse to be a survey."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import segyio
from segy_files import (
    FIRST_CROSSLINE,
    FIRST_INLINE,
    cube_trace_order,
    headers,
    headers_only,
    traces,
    write_cube,
    write_shot_gathers,
)
from tiny_models import LateralStepSegmenter, ThresholdSegmenter

from training.survey import AmplitudeSettings, ReadOptions, open_survey, predict_survey
from training.survey.predict import DEAD_CLASS
from training.survey.volumes import SurveyFileError

AS_IS = AmplitudeSettings(percentiles=None)
CUBE = np.random.default_rng(0).uniform(0, 255, size=(3, 20, 18)).astype(np.float32)
THRESHOLD = 127.5


def _predict(model, source: Path, output: Path, **options):
    return predict_survey(model, source, output, progress=False, **{"amplitude": AS_IS, **options})


@pytest.mark.parametrize("direction", ["inline", "crossline", "both"])
def test_a_single_crossline_is_segmented_along_it_as_one_section(
    direction: str, tmp_path: Path, single_torch_thread: None
) -> None:
    """Six inlines of one crossline whose amplitudes step at the fourth inline: a model that sees across
    traces finds the step only if the crossline is read as one section (six 1-trace sections show none)."""
    cube = np.where(np.arange(6)[:, None, None] < 3, 50.0, 200.0) * np.ones((6, 10, 18))
    source = write_cube(tmp_path / "xline.sgy", cube.astype(np.float32), cells=[(i, 4) for i in range(6)])
    result = _predict(LateralStepSegmenter(step=100.0), source, tmp_path / "out" / "classes.npy",
                      direction=direction, figure=tmp_path / "out" / "line.png")
    expected = np.zeros((18, 6), dtype=np.uint8)
    expected[:, 2:4] = 1
    np.testing.assert_array_equal(np.load(result.paths.classes), expected)
    np.testing.assert_array_equal(traces(result.paths.segy), expected.T)
    assert (result.line, result.layout, result.direction, result.sections) == (
        f"crossline {FIRST_CROSSLINE + 4}", ["sample", "inline"], "crossline", 1)
    record = json.loads(result.paths.metadata.read_text())
    assert record["survey_shape"] == [18, 6] and record["layout"] == ["sample", "inline"]
    assert result.figure.stat().st_size > 0


def test_a_single_inline_has_the_same_layout(tmp_path: Path, single_torch_thread: None) -> None:
    source = write_cube(tmp_path / "iline.sgy", CUBE, cells=[(1, j) for j in range(20)])
    result = _predict(ThresholdSegmenter(THRESHOLD), source, tmp_path / "classes.npy")
    np.testing.assert_array_equal(np.load(result.paths.classes), (CUBE[1].T > THRESHOLD).astype(np.uint8))
    assert (result.line, result.layout, list(result.survey_shape)) == (
        f"inline {FIRST_INLINE + 1}", ["sample", "crossline"], [18, 20])


def test_a_little_endian_survey_is_read_and_written_in_its_byte_order(
    tmp_path: Path, single_torch_thread: None
) -> None:
    source = write_cube(tmp_path / "little.sgy", CUBE, endian="little")
    survey = open_survey(source)
    assert survey.endian == "little"
    np.testing.assert_array_equal(survey.section("crossline", 7), CUBE[:, 7].T)
    survey.close()
    result = _predict(ThresholdSegmenter(THRESHOLD), source, tmp_path / "out" / "classes.npy")
    expected = (CUBE > THRESHOLD).astype(np.uint8)
    np.testing.assert_array_equal(np.load(result.paths.classes), expected)
    assert headers(result.paths.segy, "little") == headers(source, "little")
    np.testing.assert_array_equal(traces(result.paths.segy, "little"), expected.reshape(-1, 18))
    with pytest.raises(SurveyFileError, match=r"little\.sgy: cannot read as big-endian SEG-Y .*--endian"):
        open_survey(source, ReadOptions(endian="big"))


@pytest.mark.parametrize("line_2d", [False, True])
def test_prestack_offsets_are_refused_in_one_sentence(line_2d: bool, tmp_path: Path) -> None:
    cells = [cell for cell in cube_trace_order((3, 20), "inline") for _ in range(2)]
    source = write_cube(tmp_path / "prestack.sgy", CUBE, cells=cells, offsets=[100, 200] * 60)
    with pytest.raises(SurveyFileError, match=r"^\S*prestack\.sgy: prestack data, offset gathers with 2 "
                                              r"offsets \(100 to 200\): geofm segments post-stack sections, "
                                              r"so stack the gathers \(or write one offset to a file of its "
                                              r"own\)"):
        open_survey(source, ReadOptions(line_2d=line_2d))


@pytest.mark.parametrize("line_2d", [False, True])
def test_shot_gathers_are_refused_in_one_sentence(line_2d: bool, tmp_path: Path) -> None:
    source = write_shot_gathers(tmp_path / "shots.sgy", shots=3, traces_per_shot=8, samples=30)
    with pytest.raises(SurveyFileError, match=r"shots\.sgy: prestack data, shot gathers of 3 field records "
                                              r"with 8 offsets \(100 to 450\)"):
        open_survey(source, ReadOptions(line_2d=line_2d))


def test_missing_traces_are_dead_masked_and_never_counted(tmp_path: Path, single_torch_thread: None) -> None:
    missing = [(0, 0), (0, 7), (1, 12), (2, 19), (2, 3)]
    cells = [cell for cell in cube_trace_order((3, 20), "shuffled") if cell not in missing]
    source = write_cube(tmp_path / "gappy.sgy", CUBE, cells=cells)
    result = _predict(ThresholdSegmenter(THRESHOLD), source, tmp_path / "out" / "classes.npy",
                      probabilities=True, direction="both", figure=tmp_path / "out" / "inline.png")
    classes = np.load(result.paths.classes)
    expected = (CUBE > THRESHOLD).astype(np.uint8)
    dead = np.zeros((3, 20), dtype=bool)
    dead[tuple(np.array(missing).T)] = True
    assert classes.shape == CUBE.shape and (classes[dead] == DEAD_CLASS).all()
    np.testing.assert_array_equal(classes[~dead], expected[~dead])
    assert result.dead_traces == 5
    assert result.class_counts == np.bincount(expected[~dead].reshape(-1)).tolist()
    assert np.isnan(np.load(result.paths.probabilities)[:, dead].astype(np.float32)).all()
    assert headers(result.paths.segy) == headers(source)
    np.testing.assert_array_equal(traces(result.paths.segy), np.stack([expected[i, j] for i, j in cells]))
    mapped = _predict(ThresholdSegmenter(THRESHOLD), source, tmp_path / "mapped.npy",
                      amplitude=AmplitudeSettings())
    assert mapped.amplitude_mapping.traces_total == 55 and mapped.amplitude_mapping.traces_sampled == 55


def test_duplicated_traces_are_named_or_resolved_by_the_option(tmp_path: Path) -> None:
    cells = cube_trace_order((3, 20), "inline")
    source = write_cube(tmp_path / "doubled.sgy", CUBE, cells=[*cells[:26], (1, 5), *cells[26:]])
    with segyio.open(str(source), "r+", ignore_geometry=True) as segy:
        segy.trace[26] = np.full(18, -1.0, dtype=np.float32)  # the second trace at inline 101 crossline 25
    with pytest.raises(SurveyFileError, match=r"doubled\.sgy: 1 inline/crossline positions hold more than "
                                              r"one trace \(inline 101 crossline 25: traces 26, 27 of the "
                                              r"file\); remove the duplicates, or pass --duplicates first"):
        open_survey(source)
    for keep, trace in (("first", CUBE[1, 5]), ("last", np.full(18, -1.0))):
        survey = open_survey(source, ReadOptions(duplicates=keep))
        assert survey.shape == CUBE.shape and survey.dead is None
        np.testing.assert_array_equal(survey.section("inline", 1)[:, 5], trace)
        survey.close()


def test_a_segy_of_headers_only_is_refused_in_one_sentence(tmp_path: Path) -> None:
    source = headers_only(write_cube(tmp_path / "cube.sgy", CUBE), tmp_path / "empty.sgy")
    with pytest.raises(SurveyFileError, match=r"empty\.sgy: holds SEG-Y headers but no traces"):
        open_survey(source)


def test_a_grid_too_sparse_to_be_a_survey_is_refused_naming_the_flags(tmp_path: Path) -> None:
    """A crooked 2-D line binned by inline and crossline: 6 traces on the diagonal of a 6 x 6 grid."""
    cube = np.random.default_rng(1).normal(size=(6, 6, 18)).astype(np.float32)
    source = write_cube(tmp_path / "crooked.sgy", cube, cells=[(i, i) for i in range(6)])
    with pytest.raises(SurveyFileError, match=r"crooked\.sgy: the 6 trace positions fill only 17% of the 6 "
                                              r"inline x 6 crossline grid .* pass --line-2d"):
        open_survey(source)
