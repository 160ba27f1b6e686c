"""Which items of a flip-paired dataset make each batch (`train.batch_composition`).

A flip-paired dataset (`PreparedDataset`/`RawDataset` with `flip_pairs=True`) holds n samples as items
0..n-1 and their left-right mirrors as items n..2n-1.

- `shuffled` (ours): all 2n items in a seeded random order, `batch_size` items a batch; a sample and its
  mirror are independent items.
- `mirror_pairs` (the authors'): `batch_size` samples a batch, each followed by its mirror (2 x batch_size
  sections), samples in a seeded random order, as their loader's items are (sample, mirror) pairs. The last
  batch holds the remaining samples (their DataLoader keeps it).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import torch
from torch.utils.data import BatchSampler, Dataset, RandomSampler, Sampler

from training.lookup import lookup


class MirrorPairBatches(Sampler[list[int]]):
    """Batches of `samples_per_batch` samples of a flip-paired dataset of `num_samples` samples, as item
    indices [s0, s0 + n, s1, s1 + n, ...]; samples shuffled by `generator`, or in order without one."""

    def __init__(self, num_samples: int, samples_per_batch: int,
                 generator: torch.Generator | None = None) -> None:
        if num_samples < 1 or samples_per_batch < 1:
            raise ValueError(f"mirror-pair batches need samples and a batch size of at least 1; got "
                             f"{num_samples} samples, {samples_per_batch} a batch")
        self.num_samples = num_samples
        self.samples_per_batch = samples_per_batch
        self.generator = generator

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.samples_per_batch)

    def __iter__(self) -> Iterator[list[int]]:
        order = (torch.arange(self.num_samples) if self.generator is None
                 else torch.randperm(self.num_samples, generator=self.generator)).tolist()
        for start in range(0, self.num_samples, self.samples_per_batch):
            yield [item for sample in order[start:start + self.samples_per_batch]
                   for item in (sample, sample + self.num_samples)]


def _paired_size(dataset: Dataset) -> int:
    """The number of samples of a flip-paired dataset; any other dataset is an error."""
    if not getattr(dataset, "flip_pairs", False):
        raise ValueError(f"batch composition 'mirror_pairs' needs a dataset with flip_pairs=True; "
                         f"got {type(dataset).__name__} without mirror images")
    return dataset.num_samples


def _shuffled(dataset: Dataset, batch_size: int, generator: torch.Generator) -> Sampler[list[int]]:
    return BatchSampler(RandomSampler(dataset, generator=generator), batch_size, drop_last=False)


def _mirror_pairs(dataset: Dataset, batch_size: int, generator: torch.Generator) -> Sampler[list[int]]:
    return MirrorPairBatches(_paired_size(dataset), batch_size, generator)


BATCH_COMPOSITIONS: dict[str, Callable[[Dataset, int, torch.Generator], Sampler[list[int]]]] = {
    "shuffled": _shuffled,
    "mirror_pairs": _mirror_pairs,
}


def training_batches(composition: str, dataset: Dataset, batch_size: int,
                     generator: torch.Generator) -> Sampler[list[int]]:
    """The batch sampler of one training epoch; `batch_size` is items for `shuffled`, samples (each with its
    mirror) for `mirror_pairs`. Give the loader the same generator
    (`DataLoader(dataset, batch_sampler=..., generator=generator)`): it draws its workers' base seed from it
    first, so `shuffled` gives exactly the batches of `DataLoader(shuffle=True, generator=generator)`."""
    return lookup("batch composition", composition, BATCH_COMPOSITIONS)(dataset, batch_size, generator)


def mirror_pair_batches(dataset: Dataset, samples_per_batch: int) -> MirrorPairBatches:
    """The authors' evaluation batches of a flip-paired dataset: in order, each sample with its mirror."""
    return MirrorPairBatches(_paired_size(dataset), samples_per_batch)
