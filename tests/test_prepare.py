"""Splits are seeded and leak-free; prepared arrays hold exactly the raw files; every prepared file is the
same, byte for byte, however its statistics are summed; a failed preparation leaves the previous good one
in place."""

from __future__ import annotations

import functools
import io
import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from training.data import card
from training.data.card import CARD_FILE, card_csv, data_card, read_card
from training.data.prepare import npy_header, prepare_task, read_split_plan, read_stats
from training.data.splits import SplitError, plan_splits, seeded_permutation, validation_count
from training.data.stats import RunningMoments
from training.data.synthetic import write_synthetic_dataset
from training.data.validate import DataValidationError
from training.errors import MissingInputError
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


def test_validation_count_bounds() -> None:
    assert validation_count(10, 0.01) == 1
    assert validation_count(3, 0.9) == 2
    for fraction in (0.0, 1.0):
        with pytest.raises(SplitError, match=rf"data\.val_fraction.*got {fraction}"):
            validation_count(10, fraction)
    with pytest.raises(SplitError, match="1 training sample"):
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


def _exact_mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and std in exact rational arithmetic (no numpy reduction, no BLAS), each rounded once."""
    exact = [Fraction(value) for value in values.ravel().tolist()]
    mean = sum(exact) / len(exact)
    return float(mean), math.sqrt(float(sum((value - mean) ** 2 for value in exact) / len(exact)))


def test_stats_describe_the_train_split(raw_dir: Path, tmp_path: Path) -> None:
    prepare_task(raw_dir, tmp_path / "prepared", DAS, val_fraction=0.3, split_seed=7)
    stats = read_stats(tmp_path / "prepared", "das")
    inputs = np.load(tmp_path / "prepared/das/train_inputs.npy")
    labels = np.load(tmp_path / "prepared/das/train_labels.npy")
    assert (stats["mean"], stats["std"]) == _exact_mean_std(inputs)
    assert stats["class_pixel_counts"] == np.bincount(labels.ravel(), minlength=2).tolist()
    assert sum(stats["class_frequencies"]) == pytest.approx(1.0)
    assert stats["counts"] == {"train": 7, "val": 3, "test": 3}


def _files(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_preparation_is_deterministic(raw_dir: Path, tmp_path: Path) -> None:
    first = prepare_task(raw_dir, tmp_path / "a", DAS, val_fraction=0.2, split_seed=3)
    second = prepare_task(raw_dir, tmp_path / "b", DAS, val_fraction=0.2, split_seed=3)
    assert _files(first) == _files(second)
    assert sorted(_files(first)) == [
        "card.csv", "contents.json", "splits.json", "stats.json", "test_inputs.npy", "test_labels.npy",
        "train_inputs.npy", "train_labels.npy", "val_inputs.npy", "val_labels.npy",
    ]  # fmt: skip


@pytest.mark.parametrize("block_size", [1, 7, 1000])
def test_prepared_bytes_do_not_depend_on_how_statistics_are_summed(
    raw_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_size: int
) -> None:
    """Summing in other chunks (as other SIMD widths, BLAS kernels or numpy buffer sizes do) must give
    the same stats.json and card.csv, byte for byte."""
    reference = _files(prepare_task(raw_dir, tmp_path / "a", DAS, val_fraction=0.2, split_seed=3))
    monkeypatch.setattr(card, "RunningMoments", functools.partial(RunningMoments, block_size=block_size))
    assert _files(prepare_task(raw_dir, tmp_path / "b", DAS, val_fraction=0.2, split_seed=3)) == reference


def test_card_describes_every_split_as_data_card_does(raw_dir: Path, tmp_path: Path) -> None:
    target = prepare_task(raw_dir, tmp_path / "prepared", DAS, val_fraction=0.2, split_seed=3)
    written = (target / CARD_FILE).read_text()
    assert written == card_csv(data_card(tmp_path / "prepared", DAS))
    table = read_card(target / CARD_FILE)
    assert table["samples"].to_dict() == {"train": 8, "val": 2, "test": 3}
    for split in ("train", "val", "test"):
        inputs = np.load(target / f"{split}_inputs.npy")
        row = table.loc[split]
        assert (row["input_mean"], row["input_std"]) == _exact_mean_std(inputs)
        assert (row["input_min"], row["input_max"]) == (inputs.min(), inputs.max())
    stats = read_stats(tmp_path / "prepared", "das")
    assert (stats["mean"], stats["std"]) == tuple(table.loc["train", ["input_mean", "input_std"]])


def test_npy_header_is_fixed_and_readable(tmp_path: Path) -> None:
    header = npy_header(np.dtype(np.float32), (7, 30, 26))
    text = "{'descr': '<f4', 'fortran_order': False, 'shape': (7, 30, 26), }"
    assert header == b"\x93NUMPY\x01\x00v\x00" + text.encode() + b" " * (128 - 11 - len(text)) + b"\n"
    for dtype, shape in ((np.float32, (7, 30, 26)), (np.uint8, (0, 3, 2)), (np.uint8, (12345678901, 1))):
        written = io.BytesIO()
        np.lib.format.write_array_header_1_0(
            written, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
        )
        assert npy_header(np.dtype(dtype), shape) == written.getvalue()  # numpy >= 1.25 writes the same
    array = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    (tmp_path / "a.npy").write_bytes(npy_header(array.dtype, array.shape) + array.tobytes())
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), array)


def test_split_is_the_same_on_every_numpy() -> None:
    """Drawn from PCG64's raw stream, which numpy promises never to change: these are its values."""
    assert seeded_permutation(10, 7).tolist() == [6, 3, 4, 9, 0, 2, 8, 7, 5, 1]
    assert plan_splits(10, 3, 0.3, 7).val == [3, 4, 6]
    assert sorted(seeded_permutation(1000, 0).tolist()) == list(range(1000))
    assert seeded_permutation(1000, 0).tolist() != seeded_permutation(1000, 1).tolist()


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


def test_non_finite_raw_input_stops_preparation(raw_dir: Path, tmp_path: Path) -> None:
    broken = raw_dir / "das/train/image/5.dat"
    inputs = np.fromfile(broken, dtype="<f4")
    inputs[17] = np.nan
    inputs.tofile(broken)
    with pytest.raises(DataValidationError, match=r"'das'.*'train'.*image/5\.dat: inputs hold NaN or inf"):
        prepare_task(raw_dir, tmp_path / "prepared", DAS, val_fraction=0.2, split_seed=3)
    assert not (tmp_path / "prepared" / "das").exists()


def test_card_of_non_finite_inputs_names_the_sample(raw_dir: Path) -> None:
    broken = raw_dir / "das/valid/image/1.dat"
    inputs = np.fromfile(broken, dtype="<f4")
    inputs[3] = np.inf
    inputs.tofile(broken)
    with pytest.raises(DataValidationError, match=r"'das', split 'valid', sample 1 under .*raw: inputs hold"):
        data_card(raw_dir, DAS, stage="raw")


def test_stats_of_an_unprepared_task_say_to_prepare_it(tmp_path: Path) -> None:
    expected = r"stats\.json not found: run the prepare stage for task 'das'"
    with pytest.raises(MissingInputError, match=expected):
        read_stats(tmp_path / "prepared", "das")


def test_truncated_raw_file_stops_preparation(raw_dir: Path, tmp_path: Path) -> None:
    broken = raw_dir / "das/train/image/4.dat"
    broken.write_bytes(broken.read_bytes()[:100])
    with pytest.raises(DataValidationError, match=r"train/image/4\.dat: is 100 bytes"):
        prepare_task(raw_dir, tmp_path / "prepared", DAS, val_fraction=0.2, split_seed=3)
    assert not (tmp_path / "prepared" / "das").exists()
