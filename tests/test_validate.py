"""Validation names the task, split and file at fault; the data card reports what is there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from training.data.card import data_card
from training.data.prepare import prepare_task
from training.data.synthetic import write_synthetic_dataset
from training.data.validate import DataValidationError, validate_prepared, validate_raw
from training.tasks import get_task

SALT = get_task("salt").with_shape((24, 20))
SEAM = get_task("seam").with_shape((48, 20))


@pytest.fixture()
def raw_dir(tmp_path: Path) -> Path:
    write_synthetic_dataset(
        tmp_path / "raw", {"salt": SALT, "seam": SEAM}, train_count=4, test_count=2, seed=0
    )
    return tmp_path / "raw"


def test_good_data_passes(raw_dir: Path) -> None:
    summary = validate_raw(raw_dir, SALT, expected_counts={"train": 4, "valid": 2})
    assert summary.counts == {"train": 4, "valid": 2}
    assert summary.bytes_checked == 6 * 24 * 20 * 5


def test_truncated_input_is_named(raw_dir: Path) -> None:
    path = raw_dir / "salt/valid/input/1.dat"
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(
        DataValidationError, match=r"'salt'.*'valid'.*valid/input/1\.dat.*1916 bytes, expected 1920"
    ):
        validate_raw(raw_dir, SALT)


def test_out_of_range_label_is_named(raw_dir: Path) -> None:
    path = raw_dir / "salt/train/target/2.dat"
    labels = np.fromfile(path, dtype=np.int8)
    labels[7] = 2
    labels.tofile(path)
    with pytest.raises(DataValidationError, match=r"'salt'.*'train'.*train/target/2\.dat.*label value 2"):
        validate_raw(raw_dir, SALT)


def test_negative_label_is_named(raw_dir: Path) -> None:
    path = raw_dir / "seam/valid/target/0.dat"
    labels = np.fromfile(path, dtype=np.int8)
    labels[0] = -1
    labels.tofile(path)
    with pytest.raises(DataValidationError, match=r"valid/target/0\.dat.*label value -1 outside \[0, 6\)"):
        validate_raw(raw_dir, SEAM)


def test_nan_input_is_named(raw_dir: Path) -> None:
    path = raw_dir / "salt/train/input/3.dat"
    values = np.fromfile(path, dtype="<f4")
    values[5] = np.nan
    values.tofile(path)
    with pytest.raises(DataValidationError, match=r"train/input/3\.dat.*NaN or inf"):
        validate_raw(raw_dir, SALT)


def test_gap_in_indices_and_count_mismatch_are_named(raw_dir: Path) -> None:
    with pytest.raises(DataValidationError, match=r"'train'.*holds 4 samples, expected 5"):
        validate_raw(raw_dir, SALT, expected_counts={"train": 5})
    (raw_dir / "salt/train/input/1.dat").rename(raw_dir / "salt/train/input/9.dat")
    with pytest.raises(DataValidationError, match=r"train/input/1\.dat: is missing"):
        validate_raw(raw_dir, SALT)


def test_missing_label_folder_is_named(raw_dir: Path) -> None:
    for path in (raw_dir / "salt/valid/target").iterdir():
        path.unlink()
    (raw_dir / "salt/valid/target").rmdir()
    with pytest.raises(DataValidationError, match=r"'valid'.*valid/target: folder is missing"):
        validate_raw(raw_dir, SALT)


def test_prepared_arrays_are_checked(raw_dir: Path, tmp_path: Path) -> None:
    prepared = tmp_path / "prepared"
    prepare_task(raw_dir, prepared, SALT, val_fraction=0.25, split_seed=0)
    assert validate_prepared(prepared, SALT).counts == {"train": 3, "val": 1, "test": 2}
    labels = np.load(prepared / "salt/test_labels.npy", mmap_mode="r+")
    labels[1, 0, 0] = 5
    labels.flush()
    del labels
    with pytest.raises(DataValidationError, match=r"'test'.*test_labels\.npy.*label value 5"):
        validate_prepared(prepared, SALT)
    with pytest.raises(DataValidationError, match="run the prepare stage"):
        validate_prepared(prepared, SEAM)


def test_data_card_matches_the_arrays(raw_dir: Path, tmp_path: Path) -> None:
    prepared = tmp_path / "prepared"
    prepare_task(raw_dir, prepared, SEAM, val_fraction=0.25, split_seed=0)
    card = data_card(prepared, SEAM)
    assert list(card.index) == ["train", "val", "test"]
    assert card["samples"].tolist() == [3, 1, 2]
    inputs = np.load(prepared / "seam/train_inputs.npy")
    labels = np.load(prepared / "seam/train_labels.npy")
    train = card.loc["train"]
    assert train["input_mean"] == pytest.approx(inputs.mean(dtype=np.float64), rel=1e-6)
    assert train["input_std"] == pytest.approx(inputs.std(dtype=np.float64), rel=1e-5)
    assert (train["input_min"], train["input_max"]) == (inputs.min(), inputs.max())
    expected = np.bincount(labels.ravel(), minlength=6) / labels.size
    assert [train[f"class_{c}_fraction"] for c in range(6)] == pytest.approx(expected)
    raw_card = data_card(raw_dir, SEAM, stage="raw")
    assert raw_card["samples"].to_dict() == {"train": 4, "valid": 2}
    assert raw_card.loc["valid"].to_dict() == pytest.approx(card.loc["test"].to_dict())
    with pytest.raises(ValueError, match="unknown data stage"):
        data_card(raw_dir, SEAM, stage="zarr")
