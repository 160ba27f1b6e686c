"""One process's place in a data-parallel training, read from the environment torchrun sets.

`fit` takes a `Distributed`: `SINGLE_PROCESS` (the default) changes nothing; under torchrun each process
trains on its share of every global batch (`train.batch_size` is the global batch, split evenly), its
gradients are averaged by DistributedDataParallel, the loss sums and confusion matrices are summed across
processes before any metric, and only the main process (rank 0) writes checkpoints and tells callbacks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset, Sampler

from training.distributed.sampler import PairedDistributedSampler, ShardSampler, pair_offset

Array = TypeVar("Array", bound=np.ndarray)


@dataclass(frozen=True)
class Distributed:
    """Rank and world size of this process (and its rank on this machine); a world of 1 is one process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that writes: checkpoints, metrics, tracker runs, registry versions."""
        return self.rank == 0

    def local_batch(self, global_batch: int) -> int:
        """This process's share of a global batch, which must split evenly."""
        if global_batch % self.world_size:
            raise ValueError(f"batch size {global_batch} does not split evenly over {self.world_size} "
                             "processes; choose a multiple of the process count")
        return global_batch // self.world_size

    def train_sampler(self, dataset: Dataset, *, seed: int, epoch: int) -> Sampler[int] | None:
        """The epoch's items of this process, or None for one process (`fit` shuffles as it always has)."""
        if not self.active:
            return None
        return PairedDistributedSampler(len(dataset), num_replicas=self.world_size, rank=self.rank, seed=seed,
                                        epoch=epoch, pair_offset=pair_offset(dataset))

    def eval_sampler(self, dataset: Dataset) -> Sampler[int] | None:
        """This process's share of an evaluation set, or None for one process."""
        if not self.active:
            return None
        return ShardSampler(len(dataset), num_replicas=self.world_size, rank=self.rank)

    def local_length(self, dataset: Dataset) -> int:
        """How many training items this process sees per epoch."""
        sampler = self.train_sampler(dataset, seed=0, epoch=0)
        return len(dataset) if sampler is None else len(sampler)

    def wrap(self, model: nn.Module, device: torch.device) -> nn.Module:
        """The module to train through: `model` itself for one process, else a DistributedDataParallel view
        of it (same parameters; gradients averaged across processes during backward). Its graph is static:
        parameters a network never uses (some adapters of MLA, for one) keep no gradient, as with one
        process. On CUDA, batch norm layers become synchronized ones, so statistics span the global batch."""
        if not self.active:
            return model
        if device.type != "cuda":
            return DistributedDataParallel(model, static_graph=True)
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        index = torch.cuda.current_device() if device.index is None else device.index
        return DistributedDataParallel(model, device_ids=[index], static_graph=True)

    def all_sum(self, values: Array) -> Array:
        """`values` summed element-wise over every process (unchanged for one process)."""
        if not self.active:
            return values
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        tensor = torch.as_tensor(values, device=device)
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor.cpu().numpy()

    def from_main(self, value: Any) -> Any:
        """The main process's `value`, on every process (for decisions only the main process makes, such as
        reusing a finished training); `value` itself for one process."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


SINGLE_PROCESS = Distributed()


def from_environment(backend: str | None = None) -> Distributed:
    """This process's place from torchrun's RANK, WORLD_SIZE and LOCAL_RANK (none set: one process). Joins
    the process group (NCCL with CUDA, else gloo, unless `backend` says) and selects GPU LOCAL_RANK."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return SINGLE_PROCESS
    context = Distributed(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(context.local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend or ("nccl" if torch.cuda.is_available() else "gloo"))
    return context


def shutdown() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_initialized():
        dist.destroy_process_group()
