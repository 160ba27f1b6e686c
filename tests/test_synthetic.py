"""The synthetic source: the Zenodo layout byte for byte, seeded, readable by the training datasets."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from training.data.dataset import RawDataset
from training.data.synthetic import GENERATORS, generate_sample, write_synthetic_dataset
from training.data.validate import validate_raw
from training.settings import load_settings
from training.tasks import TASKS, get_task

DEMO_TASKS = load_settings(Path(__file__).parents[1] / "params.yaml", profile="demo").task_specs


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()
    }


def test_every_task_has_a_generator() -> None:
    assert set(GENERATORS) == set(TASKS)


def test_demo_layout_is_the_zenodo_layout_and_validates(tmp_path: Path) -> None:
    written = write_synthetic_dataset(tmp_path, DEMO_TASKS, train_count=3, test_count=2, seed=0)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(DEMO_TASKS)
    for key, task in DEMO_TASKS.items():
        assert written[key] == tmp_path / key
        height, width = task.shape
        for split, count in (("train", 3), ("valid", 2)):
            inputs = tmp_path / key / split / task.input_dir
            labels = tmp_path / key / split / task.label_dir
            assert sorted(p.name for p in inputs.iterdir()) == [f"{i}.dat" for i in range(count)]
            assert sorted(p.name for p in labels.iterdir()) == [f"{i}.dat" for i in range(count)]
            assert all(p.stat().st_size == height * width * 4 for p in inputs.iterdir())
            assert all(p.stat().st_size == height * width for p in labels.iterdir())
            section = np.fromfile(inputs / "0.dat", dtype="<f4").reshape(height, width)
            assert 0.0 <= section.min() < 30.0 and 225.0 < section.max() <= 255.0
        summary = validate_raw(tmp_path, task, expected_counts={"train": 3, "valid": 2})
        assert summary.counts == {"train": 3, "valid": 2}


def test_synthetic_data_is_readable_by_the_raw_dataset(tmp_path: Path) -> None:
    write_synthetic_dataset(tmp_path, DEMO_TASKS, train_count=2, test_count=1, seed=3)
    for task in DEMO_TASKS.values():
        dataset = RawDataset(tmp_path, task, "train")
        assert len(dataset) == 4
        x, y = dataset[3]
        assert x.shape == (1, *task.shape) and x.dtype.is_floating_point
        assert y.shape == task.shape and int(y.max()) < task.num_classes


@pytest.mark.parametrize("key", sorted(TASKS))
def test_every_class_appears_in_every_sample(key: str) -> None:
    task = DEMO_TASKS[key]
    for index in range(4):
        inputs, labels = generate_sample(task, "train", index, seed=11)
        assert inputs.dtype == np.float32 and labels.dtype == np.int8
        assert inputs.shape == labels.shape == task.shape
        assert np.isfinite(inputs).all()
        assert set(np.unique(labels)) == set(range(task.num_classes))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    tasks = {key: DEMO_TASKS[key] for key in ("seam", "das")}
    write_synthetic_dataset(tmp_path / "a", tasks, 2, 1, seed=5)
    write_synthetic_dataset(tmp_path / "b", tasks, 2, 1, seed=5)
    write_synthetic_dataset(tmp_path / "c", tasks, 2, 1, seed=6)
    first = _tree_bytes(tmp_path / "a")
    assert first == _tree_bytes(tmp_path / "b")
    other = _tree_bytes(tmp_path / "c")
    samples = [name for name in first if name.endswith(".dat")]  # the ownership manifests are alike
    assert first.keys() == other.keys() and all(first[name] != other[name] for name in samples)


def test_a_sample_does_not_depend_on_how_many_are_written(tmp_path: Path) -> None:
    tasks = {"salt": DEMO_TASKS["salt"]}
    write_synthetic_dataset(tmp_path / "few", tasks, 2, 1, seed=0)
    write_synthetic_dataset(tmp_path / "many", tasks, 5, 3, seed=0)
    name = "salt/train/input/1.dat"
    assert (tmp_path / "few" / name).read_bytes() == (tmp_path / "many" / name).read_bytes()


def test_rewriting_replaces_the_task_folder_whole(tmp_path: Path) -> None:
    tasks = {"fault": DEMO_TASKS["fault"]}
    write_synthetic_dataset(tmp_path, tasks, 4, 2, seed=0)
    write_synthetic_dataset(tmp_path, tasks, 2, 1, seed=0)
    assert sorted(p.name for p in (tmp_path / "fault/train/image").iterdir()) == ["0.dat", "1.dat"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fault"]


def test_bad_requests_are_named() -> None:
    with pytest.raises(ValueError, match="num_classes must be 2"):
        GENERATORS["das"](np.random.default_rng(0), (32, 32), 3)
    with pytest.raises(ValueError, match="train_count"):
        write_synthetic_dataset(Path("unused"), {}, 0, 1, seed=0)
    unknown = replace(get_task("salt"), key="mars")
    with pytest.raises(KeyError, match="mars"):
        write_synthetic_dataset(Path("unused"), {"mars": unknown}, 1, 1, seed=0)
