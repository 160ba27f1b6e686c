"""Data-parallel training (torchrun, DistributedDataParallel) for `training.fit`: each process's place in the
training (`context.Distributed`), a sampler that shards the data keeping each sample beside its mirror image
(`sampler`), sums across processes, and a silent tracker for every process but the main one (`tracking`).
Import from the module that defines a name: this package re-exports nothing."""
