"""The datasets: raw values, the paper's flip pairing, prepared and raw layouts agreeing."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from training.data.dataset import PreparedDataset, RawDataset
from training.data.prepare import prepare_task
from training.data.synthetic import write_synthetic_dataset
from training.tasks import get_task

SEAM = get_task("seam").with_shape((40, 22))


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    write_synthetic_dataset(root / "raw", {"seam": SEAM}, train_count=6, test_count=3, seed=2)
    prepare_task(root / "raw", root / "prepared", SEAM, val_fraction=0.34, split_seed=0)
    return root / "raw", root / "prepared"


def test_items_are_raw_sections_and_byte_labels(dirs: tuple[Path, Path]) -> None:
    raw_dir, prepared_dir = dirs
    dataset = PreparedDataset(prepared_dir, "seam", "test", flip_pairs=False)
    assert len(dataset) == 3
    x, y = dataset[1]
    assert x.dtype == torch.float32 and x.shape == (1, 40, 22)
    assert y.dtype == torch.uint8 and y.shape == (40, 22)
    raw = np.fromfile(raw_dir / "seam/valid/input/1.dat", dtype="<f4").reshape(40, 22)
    np.testing.assert_array_equal(x[0].numpy(), raw)
    assert float(x.max()) > 200.0


def test_second_half_is_the_mirror_image(dirs: tuple[Path, Path]) -> None:
    _, prepared_dir = dirs
    dataset = PreparedDataset(prepared_dir, "seam", "train")
    count = dataset.num_samples
    assert count == 4 and len(dataset) == 8
    for index in range(count):
        x, y = dataset[index]
        x_flipped, y_flipped = dataset[index + count]
        assert torch.equal(x_flipped, torch.flip(x, dims=[-1]))
        assert torch.equal(y_flipped, torch.flip(y, dims=[-1]))
        assert not torch.equal(x_flipped, x)
    assert torch.equal(dataset[-1][0], dataset[2 * count - 1][0])
    with pytest.raises(IndexError, match="out of range"):
        dataset[2 * count]


def test_writing_to_an_item_never_reaches_the_files(dirs: tuple[Path, Path]) -> None:
    raw_dir, prepared_dir = dirs

    def open_both() -> tuple[PreparedDataset, RawDataset]:
        return PreparedDataset(prepared_dir, "seam", "test"), RawDataset(raw_dir, SEAM, "valid")

    originals = [dataset[0] for dataset in open_both()]
    originals = [(x.clone(), y.clone()) for x, y in originals]
    for dataset in open_both():
        x, y = dataset[0]
        x += 1000.0
        y += 1
    for dataset, (x, y) in zip(open_both(), originals, strict=True):
        assert torch.equal(dataset[0][0], x) and torch.equal(dataset[0][1], y)


def test_raw_and_prepared_layouts_agree(dirs: tuple[Path, Path]) -> None:
    raw_dir, prepared_dir = dirs
    raw = RawDataset(raw_dir, SEAM, "valid")
    prepared = PreparedDataset(prepared_dir, "seam", "test")
    assert len(raw) == len(prepared) == 6
    for index in range(len(raw)):
        assert all(torch.equal(a, b) for a, b in zip(raw[index], prepared[index], strict=True))


def test_loader_batches_and_cheap_pickling(dirs: tuple[Path, Path]) -> None:
    _, prepared_dir = dirs
    dataset = PreparedDataset(prepared_dir, "seam", "train")
    dataset[0]
    assert len(pickle.dumps(dataset)) < 2000
    x, y = next(iter(DataLoader(dataset, batch_size=3, shuffle=True)))
    assert x.shape == (3, 1, 40, 22) and y.shape == (3, 40, 22)
    assert int(y.max()) < SEAM.num_classes


def test_missing_preparation_says_what_to_run(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run the prepare stage"):
        PreparedDataset(tmp_path, "seam", "train")
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        PreparedDataset(tmp_path, "seam", "valid")
