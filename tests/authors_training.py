"""The authors' training step, written independently of geofm's modules (the forward comes from
tests/authors_reference.py): their weighted dice (`loss/WeightDiceLoss.py`), torch's AdamW as
`demo_classification.py` builds it (betas 0.7/0.999, weight decay 0.01) and their train/eval modes.

Epoch 1 runs after `net.train()`: BatchNorm on batch statistics, loralib's factors added to the frozen
weights and trained. From epoch 2 on the network stays in eval mode (their validation's `net.eval()` is never
undone): BatchNorm on running statistics, and loralib has merged `B A / r` into the weight, so the factors
take no part in the forward and get no gradient (AdamW skips them).
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import numpy as np
import torch
from authors_reference import (
    HEADS_BY_NETWORK,
    LORA_SCALING,
    authors_unet_input,
    authors_vit_input,
    batch_statistics,
    unet_logits,
    vit_maps,
)
from torch import Tensor

BETAS = (0.7, 0.999)
WEIGHT_DECAY = 0.01
EPS = 1e-8  # torch.optim.AdamW's default


def weighted_dice(logits: Tensor, target: Tensor, classes: int, smooth: float = 1.0) -> Tensor:
    """Their WeightedDiceLoss: inverse class frequencies of the batch (an absent class counts 1e10 pixels),
    normalized; per class 1 - (2 w I + 1) / (w U + 1), averaged over classes."""
    counts = torch.bincount(target.flatten(), minlength=classes).float()
    alpha = 1 / torch.where(counts != 0, counts, torch.tensor(1e10))
    weights = alpha / alpha.sum()
    probabilities = logits.softmax(dim=1)
    total = 0
    for c in range(classes):
        truth, predicted = (target == c).float(), probabilities[:, c]
        intersection = torch.sum(weights[c] * truth * predicted)
        union = torch.sum(weights[c] * truth) + torch.sum(weights[c] * predicted)
        total = total + 1 - (2 * intersection + smooth) / (union + smooth)
    return total / classes


def mirror_pair_batch(sections: np.ndarray, labels: np.ndarray, network: str,
                      grid: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Their batch: each raw section and its left-right mirror, through their dataset's input pipeline."""
    inputs, targets = [], []
    for section, label in zip(sections, labels, strict=True):
        for flipped in (False, True):
            raw = np.ascontiguousarray(section[:, ::-1]) if flipped else section
            inputs.append(authors_unet_input(raw).float() if network == "unet"
                          else authors_vit_input(raw, grid))
            targets.append(torch.from_numpy(np.ascontiguousarray(label[:, ::-1]) if flipped else label))
    return torch.cat(inputs), torch.stack(targets).long()


def merged_lora(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """loralib's `eval()`: W + (B A) / r in every adapted layer, the factors left out of the forward."""
    merged = {key: value for key, value in state.items() if ".lora_" not in key}
    for layer in [key[: -len(".lora_A")] for key in state if key.endswith(".lora_A")]:
        merged[f"{layer}.weight"] = (state[f"{layer}.weight"]
                                     + state[f"{layer}.lora_B"] @ state[f"{layer}.lora_A"] * LORA_SCALING)
    return merged


@dataclass
class AdamW:
    """torch.optim.AdamW's update, written out: decoupled decay, then the bias-corrected Adam step."""

    lr: float
    weight_decay: float = WEIGHT_DECAY
    moments: dict[str, tuple[int, Tensor, Tensor]] = field(default_factory=dict)

    def step(self, parameters: dict[str, Tensor], gradients: dict[str, Tensor]) -> None:
        for key, gradient in gradients.items():
            count, mean, square = self.moments.get(key, (0, torch.zeros_like(gradient),
                                                         torch.zeros_like(gradient)))
            count += 1
            mean = BETAS[0] * mean + (1 - BETAS[0]) * gradient
            square = BETAS[1] * square + (1 - BETAS[1]) * gradient * gradient
            self.moments[key] = (count, mean, square)
            corrected_mean = mean / (1 - BETAS[0] ** count)
            corrected_square = square / (1 - BETAS[1] ** count)
            decayed = parameters[key] * (1 - self.lr * self.weight_decay)
            parameters[key] = decayed - self.lr * corrected_mean / (corrected_square.sqrt() + EPS)


def training_step(network: str, state: dict[str, Tensor], trainable: set[str], x: Tensor, y: Tensor,
                  classes: int, epoch: int, optimizer: AdamW) -> float:
    """One step of their loop in `epoch` (1-based) on the batch x, y: updates `state` in place (trained
    parameters, and in epoch 1 the BatchNorm running statistics) and returns the loss."""
    train_mode = epoch == 1
    forward_state = dict(state) if train_mode else merged_lora(state)
    learning = {key for key in trainable if key in forward_state}  # merged factors get no gradient
    for key in learning:
        forward_state[key] = state[key].detach().clone().requires_grad_(True)
    size = tuple(y.shape[-2:])
    with batch_statistics() if train_mode else nullcontext():
        if network == "unet":
            logits = unet_logits(forward_state, x)
        else:
            logits = HEADS_BY_NETWORK[network](forward_state, vit_maps(forward_state, x), size)
    loss = weighted_dice(logits, y, classes)
    keys = sorted(learning)
    found = torch.autograd.grad(loss, [forward_state[k] for k in keys], allow_unused=True)
    # A parameter outside the graph (their DPT's refinenet4.resConfUnit1) has no gradient: AdamW skips it.
    gradients = {key: gradient for key, gradient in zip(keys, found, strict=True) if gradient is not None}
    updated = {key: state[key] for key in gradients}
    with torch.no_grad():
        optimizer.step(updated, gradients)
    state.update(updated)
    return loss.item()

