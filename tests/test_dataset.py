"""The datasets: raw values, the paper's flip pairing, prepared and raw layouts agreeing."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from training.data.batching import training_batches
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


def _batches(dataset: PreparedDataset, composition: str, batch_size: int, seed: int) -> list[list[int]]:
    return list(training_batches(composition, dataset, batch_size, torch.Generator().manual_seed(seed)))


def test_mirror_pair_batches_hold_their_samples_and_their_mirrors(dirs: tuple[Path, Path]) -> None:
    _, prepared_dir = dirs
    dataset = PreparedDataset(prepared_dir, "seam", "train")
    count = dataset.num_samples
    batches = _batches(dataset, "mirror_pairs", batch_size=3, seed=5)

    assert [len(batch) for batch in batches] == [6, 2]  # 3 samples + mirrors, then the last sample + mirror
    for batch in batches:
        assert batch[1::2] == [sample + count for sample in batch[0::2]]
    assert sorted(sample for batch in batches for sample in batch[0::2]) == list(range(count))
    for x, y in DataLoader(dataset, batch_sampler=training_batches("mirror_pairs", dataset, 3,
                                                                   torch.Generator().manual_seed(5))):
        assert torch.equal(x[1::2], x[0::2].flip(-1)) and torch.equal(y[1::2], y[0::2].flip(-1))


def test_mirror_pair_batches_are_shuffled_by_the_seed(dirs: tuple[Path, Path]) -> None:
    _, prepared_dir = dirs
    dataset = PreparedDataset(prepared_dir, "seam", "train")
    assert _batches(dataset, "mirror_pairs", 2, seed=5) == _batches(dataset, "mirror_pairs", 2, seed=5)
    orders = {str(_batches(dataset, "mirror_pairs", 2, seed)) for seed in range(8)}
    assert len(orders) > 2


def test_shuffled_batches_are_the_plain_shuffled_loader(dirs: tuple[Path, Path]) -> None:
    """`shuffled` keeps today's batches (mirrors as independent items, batch_size items a batch) when the
    loader gets the sampler's generator too: the loader draws its workers' base seed from it first."""
    _, prepared_dir = dirs
    dataset = PreparedDataset(prepared_dir, "seam", "train")
    plain = DataLoader(dataset, batch_size=3, shuffle=True, generator=torch.Generator().manual_seed(9))
    shuffle = torch.Generator().manual_seed(9)
    composed = DataLoader(dataset, batch_sampler=training_batches("shuffled", dataset, 3, shuffle),
                          generator=shuffle)
    pairs = list(zip(plain, composed, strict=True))
    assert len(pairs) == 3  # 8 items, 3 a batch
    for (x, y), (x2, y2) in pairs:
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_mirror_pairs_need_mirrors_and_compositions_are_named(dirs: tuple[Path, Path]) -> None:
    _, prepared_dir = dirs
    unpaired = PreparedDataset(prepared_dir, "seam", "train", flip_pairs=False)
    with pytest.raises(ValueError, match="'mirror_pairs' needs a dataset with flip_pairs=True"):
        training_batches("mirror_pairs", unpaired, 2, torch.Generator())
    with pytest.raises(ValueError, match="unknown batch composition 'pairs'; known: shuffled, mirror_pairs"):
        training_batches("pairs", unpaired, 2, torch.Generator())
