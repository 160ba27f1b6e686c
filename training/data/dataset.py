"""PyTorch datasets over the prepared arrays (the training path) and over the raw Zenodo layout.

Both give `(x, y)`: x float32 (1, H, W) with the raw values (the model scales and resizes them), y uint8
(H, W) class indices (the training loop widens them on the device: 8x fewer label bytes to copy and
move). With `flip_pairs` the length doubles and item i >= n is sample i - n flipped left to right, the
paper's pairing of each sample with its mirror image (`batching.py` puts a sample and its mirror in one
batch, as the authors' loader does). Arrays are copy-on-write memory maps opened lazily
in each process, so a dataset is cheap to send to DataLoader workers. An unflipped item shares memory
with the dataset's map: writing to it never reaches the file, but the same dataset would return the
written values afterwards (DataLoader batches are copies, so training never does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from training.data.layout import (
    INPUT_DTYPE,
    LABEL_DTYPE,
    PREPARED_SPLITS,
    prepared_array_paths,
    prepared_task_dir,
    raw_task_dir,
    sample_paths,
)
from training.data.validate import check_raw_structure
from training.errors import MissingInputError
from training.tasks import TaskSpec

_IN_PLACE = ("C_CONTIGUOUS", "WRITEABLE")
"""What torch.from_numpy needs to share an array's memory; np.require copies only arrays that lack it."""


class FlipPairedDataset(Dataset):
    """Index bookkeeping shared by both datasets: n samples, optionally followed by their mirror images."""

    def __init__(self, num_samples: int, flip_pairs: bool) -> None:
        self.num_samples = num_samples
        self.flip_pairs = flip_pairs

    def __len__(self) -> int:
        return self.num_samples * (2 if self.flip_pairs else 1)

    def _source(self, index: int) -> tuple[int, bool]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a dataset of {len(self)} items")
        index %= len(self)
        return index % self.num_samples, index >= self.num_samples

    def read_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample `index` (0..n-1, never flipped): inputs (H, W) and labels (H, W), copy-on-write maps of
        the files (writable, but a write never reaches the file)."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample, flipped = self._source(index)
        inputs, labels = self.read_sample(sample)
        # A prepared sample is used in place (no copy until the DataLoader batches it); torch's flip is
        # several times faster than copying numpy's reversed view.
        x = torch.from_numpy(np.require(inputs, np.float32, _IN_PLACE))
        y = torch.from_numpy(np.require(labels, np.uint8, _IN_PLACE))
        if flipped:
            x, y = x.flip(-1), y.flip(-1)
        return x[None], y


class PreparedDataset(FlipPairedDataset):
    """One split (`train`, `val` or `test`) of a task prepared under `prepared_dir`."""

    def __init__(self, prepared_dir: Path, task_key: str, split: str, flip_pairs: bool = True) -> None:
        task_dir = prepared_task_dir(prepared_dir, task_key)
        if split not in PREPARED_SPLITS:
            raise ValueError(f"unknown split {split!r}; prepared splits are {', '.join(PREPARED_SPLITS)}")
        self.input_path, self.label_path = prepared_array_paths(task_dir, split)
        for path in (self.input_path, self.label_path):
            if not path.is_file():
                raise MissingInputError(
                    f"prepared data for task {task_key!r} not found: {path} is missing; run "
                    "the prepare stage first (training.data.prepare.prepare_task)"
                )
        self._inputs: np.ndarray | None = None
        self._labels: np.ndarray | None = None
        super().__init__(len(self._arrays()[0]), flip_pairs)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self._inputs is None:
            self._inputs = np.load(self.input_path, mmap_mode="c")
            self._labels = np.load(self.label_path, mmap_mode="c")
        return self._inputs, self._labels

    def read_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        inputs, labels = self._arrays()
        return inputs[index], labels[index]

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_inputs": None, "_labels": None}


class RawDataset(FlipPairedDataset):
    """One raw split (`train` or `valid`) of a task in the Zenodo layout, each file read by memory map."""

    def __init__(self, raw_dir: Path, task: TaskSpec, split: str, flip_pairs: bool = True) -> None:
        self.task = task
        self.split = split
        self.task_dir = raw_task_dir(raw_dir, task)
        super().__init__(check_raw_structure(raw_dir, task, split), flip_pairs)

    def read_sample(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        input_path, label_path = sample_paths(self.task_dir, self.task, self.split, index)
        inputs = np.memmap(input_path, dtype=INPUT_DTYPE, mode="c", shape=self.task.shape)
        labels = np.memmap(label_path, dtype=LABEL_DTYPE, mode="c", shape=self.task.shape)
        return inputs, labels
