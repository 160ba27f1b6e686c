"""Samplers splitting a dataset among the processes of a data-parallel training.

`PairedDistributedSampler` shuffles *samples* per epoch and deals them out round-robin, each followed by
its mirror image (item i + n of a `flip_pairs` dataset of n samples), so a sample and its mirror always train
in the same process and, with an even per-process batch, in the same batch. Every process gets as many items
(the first samples of the epoch's order are dealt again to fill the last round), as DDP needs equal step
counts. `ShardSampler` splits an evaluation set without repeating anything, as its counts are summed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler


def pair_offset(dataset: Sized) -> int | None:
    """n for a dataset whose item i + n mirrors item i (`training.data.dataset`'s `flip_pairs`), else None."""
    return dataset.num_samples if getattr(dataset, "flip_pairs", False) else None


class PairedDistributedSampler(Sampler[int]):
    """This process's items of one epoch: samples shuffled with `seed + epoch`, dealt round-robin over
    `num_replicas` processes, each followed by its mirror (`pair_offset`) when the dataset has mirrors."""

    def __init__(self, length: int, *, num_replicas: int, rank: int, seed: int, epoch: int,
                 pair_offset: int | None = None, shuffle: bool = True) -> None:
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside 0..{num_replicas - 1}")
        if pair_offset is not None and length != 2 * pair_offset:
            raise ValueError(f"a dataset of {length} items cannot pair item i with i + {pair_offset}")
        samples = pair_offset or length
        order = (torch.randperm(samples, generator=torch.Generator().manual_seed(seed + epoch)) if shuffle
                 else torch.arange(samples))
        per_process = math.ceil(samples / num_replicas)
        dealt = order.repeat(math.ceil(per_process * num_replicas / samples))[:per_process * num_replicas]
        mine = dealt[rank::num_replicas].tolist()
        group = (0,) if pair_offset is None else (0, pair_offset)
        self.indices = [sample + offset for sample in mine for offset in group]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


class ShardSampler(Sampler[int]):
    """Items rank, rank + num_replicas, ... of a dataset of `length`: every item in exactly one process."""

    def __init__(self, length: int, *, num_replicas: int, rank: int) -> None:
        self.indices = list(range(rank, length, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)
