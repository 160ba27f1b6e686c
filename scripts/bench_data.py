"""Benchmark of the data layer: preparation throughput beside the read ceiling, loader throughput beside
the authors' loader.

    .venv/bin/python scripts/bench_data.py --task das --train-count 115 --test-count 28

Writes a synthetic task at its full size into a temporary folder, then prints
- the read ceiling: every raw file read once with plain `open().read()`, MB/s, and preparation
  (`prepare_task`: validation, statistics and writing the arrays included) over the same bytes, MB/s,
  both with the files in the page cache (warm) and evicted from it first (cold: read from disk);
- loader throughput, samples/s, of `PreparedDataset` through a DataLoader, beside the authors' way
  (`np.fromfile` per file, pairing with the flip, PIL resize to the ViT grid, per item), same batch size.
Timings are the best of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from training.data.dataset import PreparedDataset
from training.data.layout import RAW_SPLITS, input_dir, label_dir, raw_task_dir
from training.data.prepare import prepare_task
from training.data.synthetic import write_synthetic_dataset
from training.tasks import TaskSpec, get_task


class AuthorsDataset(Dataset):
    """The authors' per-item loading, for comparison: read both files, pair with the flip, resize each
    section through PIL to the ViT grid, repeat to 3 channels. One item holds two samples."""

    def __init__(self, raw_dir: Path, task: TaskSpec, split: str) -> None:
        self.task = task
        self.inputs = input_dir(raw_task_dir(raw_dir, task), task, split)
        self.labels = label_dir(raw_task_dir(raw_dir, task), task, split)
        self.count = len(list(self.inputs.glob("*.dat")))
        self.resize = T.Compose([T.Resize(task.vit_input_shape), T.ToTensor()])

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        section = np.fromfile(self.inputs / f"{index}.dat", np.float32).reshape(self.task.shape)
        labels = np.fromfile(self.labels / f"{index}.dat", np.int8).reshape(self.task.shape)
        pair = np.stack([section, np.fliplr(section)])[:, None]
        label_pair = np.stack([labels, np.fliplr(labels)])[:, None]
        resized = np.zeros((2, 1, *self.task.vit_input_shape), np.float32)
        for slot in range(2):
            resized[slot, 0] = self.resize(Image.fromarray(np.uint8(pair[slot, 0])))[0].numpy()
        return resized.repeat(3, axis=1), label_pair


def evict_from_page_cache(files: list[Path]) -> None:
    """Drop the files' pages from the page cache (POSIX_FADV_DONTNEED), so the next read comes from disk."""
    for path in files:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
            os.posix_fadvise(descriptor, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(descriptor)


def best_time(
    action: Callable[[], object], repeats: int, before: Callable[[], object] = lambda: None
) -> float:
    times = []
    for _ in range(repeats):
        before()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def read_all(files: list[Path]) -> int:
    total = 0
    for path in files:
        with path.open("rb") as handle:
            total += len(handle.read())
    return total


def loader_rate(
    dataset: Dataset,
    batch_size: int,
    samples_per_item: int,
    repeats: int,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> float:
    def epoch() -> None:
        for x, _ in DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=0):
            if transform is not None:
                transform(x)

    return len(dataset) * samples_per_item / best_time(epoch, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="das")
    parser.add_argument("--train-count", type=int, default=115)
    parser.add_argument("--test-count", type=int, default=28)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None, help="where to write (default: a temp folder)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = get_task(args.task)
    with tempfile.TemporaryDirectory(dir=args.workdir) as scratch:
        raw_dir, prepared_dir = Path(scratch) / "raw", Path(scratch) / "prepared"
        start = time.perf_counter()
        write_synthetic_dataset(raw_dir, {task.key: task}, args.train_count, args.test_count, seed=0)
        print(
            f"task {task.key} {task.shape[0]}x{task.shape[1]}, {args.train_count}+{args.test_count} samples; "
            f"synthesised in {time.perf_counter() - start:.1f} s"
        )
        files = [
            path
            for split in RAW_SPLITS
            for folder in (
                input_dir(raw_dir / task.key, task, split),
                label_dir(raw_dir / task.key, task, split),
            )
            for path in sorted(folder.iterdir())
        ]
        size_mb = read_all(files) / 1e6

        def prepare() -> None:
            prepare_task(raw_dir, prepared_dir, task, 0.1, 1234)

        def clear() -> None:
            shutil.rmtree(prepared_dir / task.key, ignore_errors=True)

        def clear_and_evict() -> None:
            clear()
            evict_from_page_cache(files)

        for cache, before in (("warm", clear), ("cold", clear_and_evict)):
            read_s = best_time(lambda: read_all(files), args.repeats, before)
            prepare_s = best_time(prepare, args.repeats, before)
            print(
                f"{cache}: read ceiling {size_mb / read_s:6.0f} MB/s, "
                f"preparation {size_mb / prepare_s:6.0f} MB/s "
                f"= {read_s / prepare_s:.2f} of the ceiling (target >= 0.5)"
            )
        prepare()

        batch = task.paper_batch_size
        ours = loader_rate(PreparedDataset(prepared_dir, task.key, "train"), batch, 1, args.repeats)
        with_resize = loader_rate(
            PreparedDataset(prepared_dir, task.key, "train"),
            batch,
            1,
            args.repeats,
            lambda x: F.interpolate(x, size=task.vit_input_shape, mode="bilinear"),
        )
        authors = loader_rate(AuthorsDataset(raw_dir, task, "train"), max(batch // 2, 1), 2, args.repeats)
        print(
            f"loader, PreparedDataset (flip pairs):      {ours:8.0f} samples/s  "
            f"({ours / authors:.1f}x authors')"
        )
        print(
            f"loader, PreparedDataset + batch resize:    {with_resize:8.0f} samples/s  "
            f"({with_resize / authors:.1f}x authors')"
        )
        print(f"loader, authors' way (fromfile + PIL):     {authors:8.0f} samples/s")


if __name__ == "__main__":
    main()
