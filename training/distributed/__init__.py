"""Data-parallel training (torchrun, DistributedDataParallel) for `training.fit`: each process's place in the
training (`Distributed`), a sampler that shards the data keeping each sample beside its mirror image, sums
across processes, and a silent tracker for every process but the main one."""

from training.distributed.context import SINGLE_PROCESS, Distributed, from_environment, shutdown
from training.distributed.sampler import PairedDistributedSampler, ShardSampler
from training.distributed.tracking import SilentTracker, main_process_run

__all__ = [
    "SINGLE_PROCESS",
    "Distributed",
    "PairedDistributedSampler",
    "ShardSampler",
    "SilentTracker",
    "from_environment",
    "main_process_run",
    "shutdown",
]
