"""Test-split scores in one pass over the sections and their mirrors: the pooled protocol on the unmirrored
sections (our headline) and the authors' protocol on their batches (each sample with its mirror).

The authors' test loader yields `paper_batch_size` (sample, mirror) pairs a batch, in order, the last batch
shorter; their mIoU and mPA are per-batch scores (`training.metrics.BatchMeanScores`) averaged over those
batches. Here every batch is such a batch; its unmirrored half also feeds the pooled confusion matrix.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from training.data.batching import mirror_pair_batches
from training.fit import EvaluationResult, resolve_device
from training.metrics import BatchMeanScores, ConfusionMatrix


@torch.inference_mode()
def evaluate_with_mirrors(model: nn.Module, dataset: Dataset, num_classes: int, batch_size: int,
                          device: str = "auto") -> EvaluationResult:
    """Scores of `model` on a flip-paired `dataset` (n samples, then their n mirrors): `scores` and
    `confusion` pooled over the n unmirrored sections, `batch_mean` ({"miou", "mpa"}) the authors' protocol
    over batches of `batch_size` samples with their mirrors (the paper's batch size). bf16 autocast on CUDA,
    as in `fit`."""
    target = resolve_device(device)
    batches = mirror_pair_batches(dataset, batch_size)
    loader = DataLoader(dataset, batch_sampler=batches, pin_memory=target.type == "cuda")
    model.to(target).eval()
    pooled, authors = ConfusionMatrix(num_classes), BatchMeanScores(num_classes)
    for x, y in tqdm(loader, desc="evaluate", leave=False, disable=None):
        x, y = x.to(target), y.to(target).long()
        with torch.autocast(target.type, dtype=torch.bfloat16, enabled=target.type == "cuda"):
            predicted = model(x).float().argmax(dim=1)
        pooled.update(predicted[0::2], y[0::2])  # items alternate sample, mirror
        authors.update(predicted, y)
    return EvaluationResult(pooled.compute(), authors.compute(), pooled.matrix)
