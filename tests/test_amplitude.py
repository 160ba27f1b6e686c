"""Field amplitudes brought to the training range: robust percentiles of the whole survey, one linear map for
every slice, recorded beside the prediction."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from segy_files import INT16, write_cube
from tiny_models import ThresholdSegmenter

from training.survey import AmplitudeSettings, open_survey, predict_survey
from training.survey.amplitude import fit_amplitude_mapping

THRESHOLD = 200.0
"""Above the middle of [0, 255], so raw amplitudes in the thousands and mapped ones disagree."""


def field_cube(seed: int = 0) -> np.ndarray:
    """An int16 cube of amplitudes in the thousands with rare spikes to +-12000 that the clip removes."""
    rng = np.random.default_rng(seed)
    cube = rng.choice(np.array([-4000, -1500, 1500, 4000], dtype=np.int16), size=(4, 24, 20))
    spikes = rng.random(cube.shape) < 0.004
    cube[spikes] = rng.choice(np.array([-12000, 12000], dtype=np.int16), size=int(spikes.sum()))
    return cube


def prescaled(cube: np.ndarray, percentiles: tuple[float, float]) -> np.ndarray:
    """The cube clipped at its percentiles and stretched to [0, 255], as a user would prepare it."""
    low, high = np.percentile(cube, percentiles)
    return ((np.clip(cube, low, high) - low) / (high - low) * 255.0).astype(np.float32)


def test_an_int16_segy_cube_gets_the_classes_of_the_same_cube_prescaled(
    tmp_path: Path, single_torch_thread: None
) -> None:
    cube = field_cube()
    source = write_cube(tmp_path / "field.sgy", cube, sample_format=INT16)
    np.save(tmp_path / "prescaled.npy", prescaled(cube, (1.0, 99.0)))
    model = ThresholdSegmenter(THRESHOLD)
    mapped = predict_survey(model, source, tmp_path / "field_classes.npy", progress=False)
    reference = predict_survey(model, tmp_path / "prescaled.npy", tmp_path / "prescaled_classes.npy",
                               amplitude=AmplitudeSettings(percentiles=None), progress=False)
    raw = predict_survey(model, source, tmp_path / "raw_classes.npy",
                         amplitude=AmplitudeSettings(percentiles=None), progress=False)
    classes = np.load(mapped.paths.classes)
    np.testing.assert_array_equal(classes, np.load(reference.paths.classes))
    assert 0.2 < classes.mean() < 0.3
    assert not np.array_equal(np.load(raw.paths.classes), classes)


def test_every_inline_gets_the_same_mapping(tmp_path: Path, single_torch_thread: None) -> None:
    """A quiet inline next to loud ones stays quiet: a mapping per slice would stretch it to full range."""
    cube = field_cube().astype(np.float32)
    cube[0] /= 20
    np.save(tmp_path / "cube.npy", cube)
    result = predict_survey(ThresholdSegmenter(THRESHOLD), tmp_path / "cube.npy", tmp_path / "classes.npy",
                            progress=False)
    classes = np.load(result.paths.classes)
    assert classes[0].sum() == 0
    np.testing.assert_array_equal(classes[1:], (prescaled(cube, (1.0, 99.0))[1:] > THRESHOLD))


def test_the_mapping_is_recorded_beside_the_prediction(tmp_path: Path, single_torch_thread: None) -> None:
    cube = field_cube()
    source = write_cube(tmp_path / "field.sgy", cube, sample_format=INT16)
    settings = AmplitudeSettings(percentiles=(2.0, 98.0), target_range=(0.0, 255.0))
    result = predict_survey(ThresholdSegmenter(THRESHOLD), source, tmp_path / "classes.npy",
                            amplitude=settings, progress=False,
                            provenance={"model": "models:/geofm-test@best"})
    record = json.loads((tmp_path / "classes.json").read_text())
    low, high = np.percentile(cube, (2.0, 98.0))
    assert record["amplitude_mapping"] == {
        "percentiles": [2.0, 98.0], "clip_low": low, "clip_high": high, "target_low": 0.0,
        "target_high": 255.0, "traces_sampled": 96, "traces_total": 96, "seed": 0}
    assert record["provenance"] == {"model": "models:/geofm-test@best"}
    assert record["paths"]["segy"] == str(tmp_path / "classes.sgy")
    assert result.amplitude_mapping.clip_low == low


def test_a_large_survey_is_mapped_from_a_seeded_sample_of_traces(tmp_path: Path) -> None:
    cube = np.random.default_rng(3).normal(0.0, 1000.0, size=(30, 40, 25)).astype(np.float32)
    np.save(tmp_path / "cube.npy", cube)
    survey = open_survey(tmp_path / "cube.npy")
    settings = AmplitudeSettings(percentiles=(1.0, 99.0), max_traces=300, seed=7)
    first = fit_amplitude_mapping(survey, settings, input_range=(0.0, 255.0))
    assert first == fit_amplitude_mapping(survey, settings, input_range=(0.0, 255.0))
    assert first.traces_sampled == 300 and first.traces_total == 1200
    low, high = np.percentile(cube, (1.0, 99.0))
    tolerance = 0.05 * (high - low)
    assert abs(first.clip_low - low) < tolerance and abs(first.clip_high - high) < tolerance
    mapped = first.apply(cube[0].T)
    assert mapped.dtype == np.float32 and mapped.min() == 0.0 and mapped.max() == 255.0


def test_mapping_needs_a_target_range(tmp_path: Path) -> None:
    np.save(tmp_path / "cube.npy", field_cube())
    survey = open_survey(tmp_path / "cube.npy")
    with pytest.raises(ValueError, match="the model records no input range"):
        fit_amplitude_mapping(survey, AmplitudeSettings(), input_range=None)
    assert fit_amplitude_mapping(survey, AmplitudeSettings(percentiles=None), input_range=None) is None
    np.save(tmp_path / "flat.npy", np.full((2, 3, 4), 7.0, dtype=np.float32))
    with pytest.raises(ValueError, match=r"flat\.npy: the amplitudes at the 1.0 and 99.0 percentiles are "):
        fit_amplitude_mapping(open_survey(tmp_path / "flat.npy"), AmplitudeSettings(), input_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="percentiles must be"):
        AmplitudeSettings(percentiles=(99.0, 1.0))
