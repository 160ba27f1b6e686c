"""A prediction never overwrites its input survey, nor a former result unless asked (`--overwrite`): each
output suffix is tried against the input, through symlinks and hard links, before anything is written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from segy_files import write_line
from tiny_models import ThresholdSegmenter

from training.survey import AmplitudeSettings, predict_survey
from training.survey.volumes import SurveyFileError

SECTION = np.random.default_rng(1).normal(size=(24, 40)).astype(np.float32)
AS_IS = AmplitudeSettings(percentiles=None)


def _predict(source: Path, output: Path, **options) -> None:
    predict_survey(ThresholdSegmenter(0.0), source, output, amplitude=AS_IS, progress=False, **options)


def _survey(tmp_path: Path, suffix: str) -> Path:
    if suffix == ".sgy":
        return write_line(tmp_path / "survey.sgy", SECTION)
    np.save(tmp_path / "survey.npy", SECTION)
    return tmp_path / "survey.npy"


@pytest.mark.parametrize(("input_suffix", "output_name", "options"), [
    (".sgy", "survey.npy", {}),                    # the SEG-Y copy of the classes would be survey.sgy
    (".npy", "survey.npy", {}),                    # the classes themselves
    (".npy", "survey.npy", {"probabilities": True}),
    (".npy", "other.npy", {"figure": "survey.npy"}),
])
def test_no_output_may_be_the_input(tmp_path: Path, input_suffix: str, output_name: str,
                                    options: dict) -> None:
    source = _survey(tmp_path, input_suffix)
    before = source.read_bytes()
    if "figure" in options:
        options = {**options, "figure": tmp_path / options["figure"]}
    with pytest.raises(SurveyFileError, match="would overwrite the input survey"):
        _predict(source, tmp_path / output_name, overwrite=True, **options)
    assert source.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) == [source.name]


def test_the_probabilities_may_not_be_the_input(tmp_path: Path) -> None:
    np.save(tmp_path / "line.probabilities.npy", SECTION)
    source = tmp_path / "line.probabilities.npy"
    with pytest.raises(SurveyFileError, match="would overwrite the input survey"):
        _predict(source, tmp_path / "line.npy", probabilities=True, overwrite=True)
    np.testing.assert_array_equal(np.load(source), SECTION)


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_link_to_the_input_is_the_input(tmp_path: Path, link: str) -> None:
    source = _survey(tmp_path, ".npy")
    (tmp_path / "out").mkdir()
    alias = tmp_path / "out" / "classes.npy"
    (os.symlink if link == "symlink" else os.link)(source, alias)
    with pytest.raises(SurveyFileError, match="would overwrite the input survey"):
        _predict(source, alias, overwrite=True)
    np.testing.assert_array_equal(np.load(source), SECTION)


def test_an_existing_output_is_kept_unless_overwrite_is_asked(tmp_path: Path) -> None:
    source = _survey(tmp_path, ".sgy")
    output = tmp_path / "classes.npy"
    output.write_bytes(b"months of interpretation")
    with pytest.raises(SurveyFileError, match=r"classes\.npy: exists already; pass --overwrite"):
        _predict(source, output)
    assert output.read_bytes() == b"months of interpretation"
    assert not (tmp_path / "classes.sgy").exists()
    _predict(source, output, overwrite=True)
    assert np.load(output).shape == SECTION.shape


def test_an_output_that_is_a_folder_is_named(tmp_path: Path) -> None:
    source = _survey(tmp_path, ".npy")
    (tmp_path / "classes.npy").mkdir()
    with pytest.raises(SurveyFileError, match=r"classes\.npy: is a folder"):
        _predict(source, tmp_path / "classes.npy", overwrite=True)
