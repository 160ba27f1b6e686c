"""Exact gradient accumulation: the full batch's gradient from micro-batches that fit in memory.

Every loss of `training.losses` is L(S) of statistics S that add up over the batch, S = sum_k s_k over its
micro-batches k, so dL/dθ = sum_k (dL/dS at S) · ds_k/dθ. Pass 1 computes S over every micro-batch without
a graph; pass 2 backpropagates, micro-batch by micro-batch, the surrogate g · s_k with the constant
g = dL/dS at S. The gradients add up to the full batch's (also for the dice losses, whose per-batch class
weights and ratios are not sums over pixels), at the cost of one more forward pass without a graph.

What differs from one pass over the whole batch, in every framework:
- batch-norm layers in training mode normalize each micro-batch with its own mean and variance, and update
  their running statistics once per micro-batch (pass 1 leaves them as it found them);
- random layers (dropout, drop path) draw the same masks in both passes (the random generators are put
  back before pass 2), but not the masks one forward over the whole batch would draw;
- float rounding: sums taken in another order (about 1e-7 relative in float32).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from training.losses import SegmentationLoss
from training.seeding import capture_rng_state, restore_rng_state


@dataclass(frozen=True)
class AccumulatedStep:
    """The batch's loss (a detached scalar, as `loss_fn(logits, target)` of the whole batch) and its
    predicted classes (B, H, W)."""

    loss: torch.Tensor
    predicted: torch.Tensor


@contextmanager
def _buffers_kept(model: nn.Module) -> Iterator[None]:
    """Put the model's buffers (batch-norm running statistics) back as they were on leaving."""
    saved = [(buffer, buffer.clone()) for buffer in model.buffers()]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def accumulate_gradients(model: nn.Module, forward: Callable[[torch.Tensor], torch.Tensor],
                         inputs: torch.Tensor, target: torch.Tensor, loss_fn: SegmentationLoss,
                         micro_batch_size: int) -> AccumulatedStep:
    """Add to the parameters' `.grad` the gradient of `loss_fn` over the whole batch (inputs, target),
    running `forward` (float32 logits of `model`) on at most `micro_batch_size` sections at a time. A
    non-finite loss adds nothing."""
    if micro_batch_size < 1:
        raise ValueError(f"micro_batch_size must be at least 1; got {micro_batch_size}")
    parts = list(zip(inputs.split(micro_batch_size), target.split(micro_batch_size), strict=True))
    rng = capture_rng_state()
    predicted = []
    with torch.no_grad(), _buffers_kept(model):
        statistics = torch.zeros((), dtype=torch.float64, device=inputs.device)
        for micro_inputs, micro_target in parts:
            logits = forward(micro_inputs)
            statistics = statistics + loss_fn.statistics(logits, micro_target).double()
            predicted.append(logits.argmax(dim=1))
    restore_rng_state(rng)
    batch_statistics = statistics.float().requires_grad_()
    loss = loss_fn.from_statistics(batch_statistics)
    (weights,) = torch.autograd.grad(loss, batch_statistics)
    if not torch.isfinite(loss):
        return AccumulatedStep(loss.detach(), torch.cat(predicted))  # the caller stops: no gradient to add
    for micro_inputs, micro_target in parts:
        surrogate = (weights * loss_fn.statistics(forward(micro_inputs), micro_target)).sum()
        surrogate.backward()
    return AccumulatedStep(loss.detach(), torch.cat(predicted))
