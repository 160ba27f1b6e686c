"""Scoring a model: one evaluation pass (the loop `fit` validates with), `evaluate` on any dataset, and the
test-split scores in one pass over the sections and their mirrors: the pooled protocol on the unmirrored
sections (our headline) and the authors' protocol on their batches (each sample with its mirror).

The authors' test loader yields `paper_batch_size` (sample, mirror) pairs a batch, in order, the last batch
shorter; their mIoU and mPA are per-batch scores (`training.metrics.BatchMeanScores`) averaged over those
batches. Here every batch is such a batch; its unmirrored half also feeds the pooled confusion matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from training.data.batching import mirror_pair_batches
from training.device import autocast, resolve_device
from training.metrics import BatchMeanScores, ConfusionMatrix, SegmentationScores


@dataclass(frozen=True)
class EvaluationResult:
    """scores: the pooled confusion-matrix protocol (the default); batch_mean: the authors' protocol
    ({"miou", "mpa"}); confusion: the (C, C) counts, row = label, column = prediction."""

    scores: SegmentationScores
    batch_mean: dict[str, float]
    confusion: np.ndarray


@dataclass
class PassResult:
    """One pass's loss summed over samples, samples, pooled confusion and per-batch scores."""

    loss_sum: float
    samples: int
    confusion: ConfusionMatrix
    batch_mean: BatchMeanScores


@torch.inference_mode()
def evaluation_pass(model: nn.Module, loader: DataLoader, num_classes: int, device: torch.device,
                    loss_fn: nn.Module | None = None, desc: str = "evaluate") -> PassResult:
    """Predict every batch of `loader` in eval mode, scoring it under both protocols (and the loss)."""
    model.eval()
    result = PassResult(0.0, 0, ConfusionMatrix(num_classes), BatchMeanScores(num_classes))
    for x, y in tqdm(loader, desc=desc, leave=False, disable=None):
        x, y = x.to(device), y.to(device).long()
        with autocast(device):
            logits = model(x)
        logits = logits.float()
        if loss_fn is not None:
            result.loss_sum += float(loss_fn(logits, y)) * len(y)
        result.samples += len(y)
        predicted = logits.argmax(dim=1)
        result.confusion.update(predicted, y)
        result.batch_mean.update(predicted, y)
    return result


def evaluate(model: nn.Module, dataset: Dataset, num_classes: int, batch_size: int,
             device: str = "auto") -> EvaluationResult:
    """Score `model` on every item of `dataset` (in order) under both protocols of `training.metrics`."""
    if len(dataset) == 0:
        raise ValueError("the evaluation set is empty")
    target = resolve_device(device)
    model.to(target)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, pin_memory=target.type == "cuda")
    result = evaluation_pass(model, loader, num_classes, target)
    return EvaluationResult(result.confusion.compute(), result.batch_mean.compute(), result.confusion.matrix)


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
        with autocast(target):
            predicted = model(x).float().argmax(dim=1)
        pooled.update(predicted[0::2], y[0::2])  # items alternate sample, mirror
        authors.update(predicted, y)
    return EvaluationResult(pooled.compute(), authors.compute(), pooled.matrix)
