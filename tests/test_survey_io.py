"""Surveys in and out: SEG-Y lines and cubes (sorted, crossline-sorted, shuffled), .npy and .dat read slice
by slice; predictions written as .npy and as a SEG-Y copy of the input's headers; nothing written on
failure; a cube predicted inline by inline without mixing inlines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from segy_files import (
    FIRST_INLINE,
    cube_trace_order,
    headers,
    traces,
    write_cube,
    write_line,
)
from tiny_models import LateralStepSegmenter, ThresholdSegmenter

from training.survey import AmplitudeSettings, ReadOptions, open_survey, predict_survey
from training.survey.tiling import TiledPredictor

CUBE = np.random.default_rng(0).uniform(0, 255, size=(3, 20, 18)).astype(np.float32)
"""3 inlines x 20 crosslines x 18 samples, already in the training range."""
AS_IS = AmplitudeSettings(percentiles=None)
THRESHOLD = 127.5


def threshold_classes(values: np.ndarray) -> np.ndarray:
    return (values > THRESHOLD).astype(np.uint8)


@pytest.mark.parametrize("order", ["inline", "crossline", "shuffled"])
def test_a_segy_cube_reads_by_its_headers_whatever_the_trace_order(order: str, tmp_path: Path) -> None:
    survey = open_survey(write_cube(tmp_path / "cube.sgy", CUBE, order))
    try:
        assert survey.shape == CUBE.shape and survey.ndim == 3
        np.testing.assert_array_equal(survey.geometry.row_numbers, FIRST_INLINE + np.arange(3))
        for i in range(3):
            np.testing.assert_array_equal(survey.section("inline", i), CUBE[i].T)
        for j in (0, 7, 19):
            np.testing.assert_array_equal(survey.section("crossline", j), CUBE[:, j].T)
        cells = np.array([0, 21, 59])
        np.testing.assert_array_equal(survey.traces(cells), CUBE.reshape(-1, 18)[cells])
    finally:
        survey.close()


def test_arrays_read_as_sections_and_volumes(tmp_path: Path) -> None:
    np.save(tmp_path / "cube.npy", CUBE)
    CUBE.tofile(tmp_path / "cube.dat")
    np.save(tmp_path / "line.npy", CUBE[1].T)
    for survey in (open_survey(tmp_path / "cube.npy"),
                   open_survey(tmp_path / "cube.dat", ReadOptions(shape=CUBE.shape))):
        assert survey.shape == CUBE.shape and survey.ndim == 3
        np.testing.assert_array_equal(survey.section("inline", 2), CUBE[2].T)
        np.testing.assert_array_equal(survey.section("crossline", 5), CUBE[:, 5].T)
    line = open_survey(tmp_path / "line.npy")
    assert line.shape == (1, 20, 18) and line.ndim == 2
    np.testing.assert_array_equal(line.section("inline", 0), CUBE[1].T)
    with pytest.raises(ValueError, match=r"cube\.dat: a raw \.dat file has no header; give its shape"):
        open_survey(tmp_path / "cube.dat")
    with pytest.raises(ValueError, match=r"cube\.dat: 4320 bytes, but a 3x20x17 float32 array has 4080"):
        open_survey(tmp_path / "cube.dat", ReadOptions(shape=(3, 20, 17)))
    with pytest.raises(ValueError, match=r"s\.tif: unknown survey format; known: \.dat, \.npy, \.sgy"):
        open_survey(tmp_path / "s.tif")


def test_a_segy_without_geometry_is_refused_naming_the_flags_unless_read_as_one_line(tmp_path: Path) -> None:
    cells = [(0, 0)] * 20
    path = write_cube(tmp_path / "flat.sgy", CUBE[:1, :20], cells=cells)
    with pytest.raises(ValueError, match=r"flat\.sgy: all 20 traces have inline 100 and crossline 20 in "
                                         r"INLINE_3D \(byte 189\) and CROSSLINE_3D \(byte 193\): no 3-D "
                                         r"geometry; pass --line-2d .* --inline-byte and --crossline-byte"):
        open_survey(path)
    line = open_survey(path, ReadOptions(line_2d=True))
    assert line.shape == (1, 20, 18) and line.ndim == 2 and line.geometry.rows == "line"
    np.testing.assert_array_equal(line.section("inline", 0), np.repeat(CUBE[0, :1].T, 20, axis=1))
    line.close()
    (tmp_path / "junk.sgy").write_bytes(b"not a segy file")
    with pytest.raises(ValueError, match=r"junk\.sgy: cannot read as big-endian SEG-Y"):
        open_survey(tmp_path / "junk.sgy")


@pytest.mark.parametrize("order", ["inline", "shuffled"])
def test_a_predicted_segy_cube_keeps_the_inputs_headers_and_holds_the_classes(
    order: str, tmp_path: Path, single_torch_thread: None
) -> None:
    (tmp_path / "in").mkdir()
    source = write_cube(tmp_path / "in" / "cube.sgy", CUBE, order)
    output = tmp_path / "out" / "classes.npy"
    result = predict_survey(ThresholdSegmenter(THRESHOLD), source, output, amplitude=AS_IS,
                            figure=tmp_path / "out" / "inline.png", figure_inline=FIRST_INLINE + 1,
                            progress=False)
    expected = threshold_classes(CUBE)
    np.testing.assert_array_equal(np.load(output), expected)
    assert result.paths.segy == tmp_path / "out" / "classes.sgy"
    assert headers(result.paths.segy) == headers(source)
    file_order = cube_trace_order((3, 20), order)
    np.testing.assert_array_equal(traces(result.paths.segy),
                                  np.stack([expected[i, j] for i, j in file_order]))
    assert sorted(path.name for path in output.parent.iterdir()) == [
        "classes.json", "classes.npy", "classes.sgy", "inline.png"]
    record = json.loads(result.paths.metadata.read_text())
    assert record["class_counts"] == np.bincount(expected.reshape(-1)).tolist()
    assert record["survey_shape"] == [3, 20, 18] and record["tile_shape"] == [16, 16]


def test_a_predicted_2d_line_is_a_section_in_and_out(tmp_path: Path, single_torch_thread: None) -> None:
    section = CUBE[0].T
    output = tmp_path / "line_classes.npy"
    result = predict_survey(ThresholdSegmenter(THRESHOLD), write_line(tmp_path / "line.sgy", section), output,
                            amplitude=AS_IS, progress=False)
    np.testing.assert_array_equal(np.load(output), threshold_classes(section))
    np.testing.assert_array_equal(traces(result.paths.segy), threshold_classes(section).T)
    assert headers(result.paths.segy) == headers(tmp_path / "line.sgy")
    across = predict_survey(ThresholdSegmenter(THRESHOLD), tmp_path / "line.sgy", tmp_path / "across.npy",
                            direction="crossline", amplitude=AS_IS, progress=False)
    assert across.direction == "inline" and across.layout == ["sample", "crossline"]
    np.testing.assert_array_equal(np.load(across.paths.classes), threshold_classes(section))


def test_a_cube_is_predicted_inline_by_inline_without_mixing_inlines(
    tmp_path: Path, single_torch_thread: None
) -> None:
    """Each inline steps from dark to bright at its own crossline, and is flat along the crosslines
    otherwise: a model that sees across traces finds each inline's step, and only there."""
    steps = [4, 10, 15]
    cube = np.stack([np.where(np.arange(20)[:, None] < step, 50.0, 200.0) * np.ones((20, 18))
                     for step in steps]).astype(np.float32)
    np.save(tmp_path / "cube.npy", cube)
    model = LateralStepSegmenter(step=100.0)
    inline = predict_survey(model, tmp_path / "cube.npy", tmp_path / "inline.npy", amplitude=AS_IS,
                            progress=False)
    expected = np.zeros(cube.shape, dtype=np.uint8)
    for i, step in enumerate(steps):
        expected[i, step - 1:step + 1] = 1
    np.testing.assert_array_equal(np.load(inline.paths.classes), expected)
    crossline = predict_survey(model, tmp_path / "cube.npy", tmp_path / "crossline.npy",
                               direction="crossline", amplitude=AS_IS, progress=False)
    assert not np.array_equal(np.load(crossline.paths.classes), expected)


def test_averaged_directions_average_the_probabilities(tmp_path: Path, single_torch_thread: None) -> None:
    np.save(tmp_path / "cube.npy", CUBE)
    model = LateralStepSegmenter(step=60.0)
    runs = {direction: predict_survey(model, tmp_path / "cube.npy", tmp_path / f"{direction}.npy",
                                      direction=direction, amplitude=AS_IS, probabilities=True,
                                      progress=False)
            for direction in ("inline", "crossline", "both")}
    probabilities = {key: np.load(run.paths.probabilities).astype(np.float32) for key, run in runs.items()}
    assert probabilities["both"].shape == (2, *CUBE.shape)
    mean = (probabilities["inline"] + probabilities["crossline"]) / 2
    np.testing.assert_allclose(probabilities["both"], mean, atol=2e-3)
    decided = np.abs(mean[1] - mean[0]) > 0.01
    np.testing.assert_array_equal(np.load(runs["both"].paths.classes)[decided], mean.argmax(axis=0)[decided])
    assert runs["both"].sections == 3 + 20
    assert not list(tmp_path.glob(".*"))


def test_a_failed_prediction_leaves_no_output(tmp_path: Path, single_torch_thread: None) -> None:
    cube = CUBE.copy()
    cube[2, 5, 5] = np.nan
    np.save(tmp_path / "cube.npy", cube)
    with pytest.raises(ValueError, match=r"cube\.npy: inline 2 holds NaN or inf"):
        predict_survey(ThresholdSegmenter(THRESHOLD), tmp_path / "cube.npy", tmp_path / "out" / "classes.npy",
                       amplitude=AS_IS, probabilities=True, progress=False)
    assert list((tmp_path / "out").iterdir()) == []


def test_the_predictor_refuses_a_model_without_a_training_shape() -> None:
    model = ThresholdSegmenter(THRESHOLD)
    del model.training_shape
    with pytest.raises(ValueError, match=r"ThresholdSegmenter carries no `training_shape`.*tile_shape="):
        TiledPredictor(model)
    assert TiledPredictor(model, tile_shape=(8, 8), device="cpu").tile_shape == (8, 8)
    classes = TiledPredictor(model, tile_shape=(8, 8), device="cpu").classes(CUBE[0].T)
    np.testing.assert_array_equal(classes, threshold_classes(CUBE[0].T))
