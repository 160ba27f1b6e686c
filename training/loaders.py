"""The DataLoaders of a training: the training split's batches as `train.batch_composition` composes them,
the selection split's as the regime scores them, and the number of optimizer steps an epoch takes."""

from __future__ import annotations

import math

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from training.data.batching import mirror_pair_batches, training_batches
from training.distributed.context import Distributed
from training.fit_config import FitConfig
from training.regime import TrainingRegime


def plain_loader(dataset: Dataset, batch_size: int, config: FitConfig, device: torch.device,
            sampler: Sampler[int] | None = None) -> DataLoader:
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=config.num_workers,
                      pin_memory=device.type == "cuda")


def selection_loader(dataset: Dataset, batch_size: int, config: FitConfig, device: torch.device,
                      regime: TrainingRegime, distributed: Distributed) -> DataLoader:
    """The selection split's batches: the authors' protocol scores `batch_size` samples with their mirrors
    a batch, in order; the pooled one any batches."""
    if regime.selection_protocol == "authors":
        return DataLoader(dataset, batch_sampler=mirror_pair_batches(dataset, batch_size),
                          num_workers=config.num_workers, pin_memory=device.type == "cuda")
    return plain_loader(dataset, batch_size, config, device, sampler=distributed.eval_sampler(dataset))


def training_loader(dataset: Dataset, batch_size: int, config: FitConfig, device: torch.device,
                     generator: torch.Generator) -> DataLoader:
    """One epoch's batches of one process, composed as `config.batch_composition` says."""
    batches = training_batches(config.batch_composition, dataset, batch_size, generator)
    return DataLoader(dataset, batch_sampler=batches, generator=generator, num_workers=config.num_workers,
                      pin_memory=device.type == "cuda")


def steps_per_epoch(train_set: Dataset, batch_size: int, config: FitConfig, distributed: Distributed) -> int:
    """Optimizer steps in one epoch of this process (what a per-step schedule counts)."""
    if distributed.world_size > 1:
        return math.ceil(distributed.local_length(train_set) / batch_size)
    return len(training_batches(config.batch_composition, train_set, batch_size, torch.Generator()))
