"""Splits are seeded and leak-free; prepared arrays hold exactly the raw files; a failed preparation
leaves the previous good one in place."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.data.prepare import prepare_task, read_split_plan, read_stats
from training.data.splits import plan_splits, validation_count
from training.data.synthetic import write_synthetic_dataset
from training.data.validate import DataValidationError
from training.tasks import get_task

DAS = get_task("das").with_shape((30, 26))


@pytest.fixture()
def raw_dir(tmp_path: Path) -> Path:
    write_synthetic_dataset(tmp_path / "raw", {"das": DAS}, train_count=10, test_count=3, seed=1)
    return tmp_path / "raw"


def _raw_sample(raw_dir: Path, split: str, index: int) -> tuple[np.ndarray, np.ndarray]:
    folder = raw_dir / "das" / split
    inputs = np.fromfile(folder / "image" / f"{index}.dat", dtype="<f4").reshape(DAS.shape)
    labels = np.fromfile(folder / "label" / f"{index}.dat", dtype=np.int8).reshape(DAS.shape)
    return inputs, labels


def test_split_plan_is_seeded_and_disjoint() -> None:
    plan = plan_splits(train_count=50, test_count=7, val_fraction=0.2, split_seed=1234)
    assert plan == plan_splits(50, 7, 0.2, 1234)
    assert plan.val != plan_splits(50, 7, 0.2, 4321).val
    assert len(plan.val) == 10 and not set(plan.train) & set(plan.val)
    assert sorted(plan.train + plan.val) == list(range(50))
    assert plan.test == list(range(7))
    assert plan_splits(5, 1, 0.0, 0).val == []


def test_validation_count_bounds() -> None:
    assert validation_count(10, 0.01) == 1
    assert validation_count(3, 0.9) == 2
    with pytest.raises(ValueError, match="val_fraction"):
        validation_count(10, 1.0)
    with pytest.raises(ValueError, match="1 training sample"):
        validation_count(1, 0.5)


def test_prepared_arrays_equal_the_raw_files(raw_dir: Path, tmp_path: Path) -> None:
    target = prepare_task(raw_dir, tmp_path / "prepared", DAS, val_fraction=0.3, split_seed=7)
    assert target == tmp_path / "prepared" / "das"
    recorded = json.loads((target / "splits.json").read_text())
    assert recorded["raw_source"] == {"train": "train", "val": "train", "test": "valid"}
    plan = read_split_plan(tmp_path / "prepared", "das")
    assert plan == plan_splits(10, 3, 0.3, 7)
    for split, raw_split in (("train", "train"), ("val", "train"), ("test", "valid")):
        inputs = np.load(target / f"{split}_inputs.npy")
        labels = np.load(target / f"{split}_labels.npy")
        assert inputs.dtype == np.float32 and labels.dtype == np.uint8
        assert inputs.shape == labels.shape == (len(plan.indices(split)), *DAS.shape)
        for row, index in enumerate(plan.indices(split)):
            raw_inputs, raw_labels = _raw_sample(raw_dir, raw_split, index)
            np.testing.assert_array_equal(inputs[row], raw_inputs)
            np.testing.assert_array_equal(labels[row], raw_labels)


def test_stats_describe_the_train_split(raw_dir: Path, tmp_path: Path) -> None:
    prepare_task(raw_dir, tmp_path / "prepared", DAS, val_fraction=0.3, split_seed=7)
    stats = read_stats(tmp_path / "prepared", "das")
    inputs = np.load(tmp_path / "prepared/das/train_inputs.npy").astype(np.float64)
    labels = np.load(tmp_path / "prepared/das/train_labels.npy")
    assert stats["mean"] == pytest.approx(inputs.mean(), rel=1e-9)
    assert stats["std"] == pytest.approx(inputs.std(), rel=1e-6)
    assert stats["class_pixel_counts"] == np.bincount(labels.ravel(), minlength=2).tolist()
    assert sum(stats["class_frequencies"]) == pytest.approx(1.0)
    assert stats["counts"] == {"train": 7, "val": 3, "test": 3}


def test_preparation_is_deterministic(raw_dir: Path, tmp_path: Path) -> None:
    first = prepare_task(raw_dir, tmp_path / "a", DAS, val_fraction=0.2, split_seed=3)
    second = prepare_task(raw_dir, tmp_path / "b", DAS, val_fraction=0.2, split_seed=3)
    names = sorted(path.name for path in first.iterdir())
    assert names == sorted(path.name for path in second.iterdir())
    assert all((first / name).read_bytes() == (second / name).read_bytes() for name in names)


def test_failed_preparation_keeps_the_previous_output(raw_dir: Path, tmp_path: Path) -> None:
    prepared = tmp_path / "prepared"
    target = prepare_task(raw_dir, prepared, DAS, val_fraction=0.2, split_seed=3)
    before = {path.name: path.read_bytes() for path in target.iterdir()}
    broken = raw_dir / "das/valid/label/2.dat"
    labels = np.fromfile(broken, dtype=np.int8)
    labels[-1] = 3
    labels.tofile(broken)
    with pytest.raises(DataValidationError, match=r"'das'.*'valid'.*valid/label/2\.dat.*label value 3"):
        prepare_task(raw_dir, prepared, DAS, val_fraction=0.5, split_seed=9)
    assert {path.name: path.read_bytes() for path in target.iterdir()} == before
    assert [path.name for path in prepared.iterdir()] == ["das"]


def test_truncated_raw_file_stops_preparation(raw_dir: Path, tmp_path: Path) -> None:
    broken = raw_dir / "das/train/image/4.dat"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(DataValidationError, match=r"train/image/4\.dat: is 100 bytes"):
        prepare_task(raw_dir, tmp_path / "prepared", DAS, val_fraction=0.2, split_seed=3)
    assert not (tmp_path / "prepared" / "das").exists()
