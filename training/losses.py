"""Segmentation losses by name: `build_loss(name, num_classes)` -> a module called as loss(logits, target).

logits are (B, C, H, W) raw scores, target is (B, H, W) int64 class indices in [0, C).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from training.lookup import lookup


def _check_shapes(logits: torch.Tensor, target: torch.Tensor, num_classes: int) -> None:
    if logits.ndim != 4 or logits.shape[1] != num_classes:
        raise ValueError(f"logits must be (B, {num_classes}, H, W); got {tuple(logits.shape)}")
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"target must be (B, H, W) = {tuple(logits.shape[:1] + logits.shape[2:])}; "
                         f"got {tuple(target.shape)}")


class DiceLoss(nn.Module):
    """Soft dice over the softmax against the one-hot target: mean over classes of 1 - dice_c.

    dice_c = (2 w_c I_c + smooth) / (w_c U_c + smooth), with I_c = sum(p_c t_c) and U_c = sum(p_c) + sum(t_c)
    over the whole batch. With `inverse_frequency` the weight w_c of a class is the inverse of its pixel
    count in the batch's target, normalized to sum to 1, and a class absent from the batch gets a weight of
    about zero (its term is then about 0): the paper's weighted dice. Without it every w_c is 1.
    """

    def __init__(self, num_classes: int, smooth: float = 1.0, inverse_frequency: bool = False) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.smooth = smooth
        self.inverse_frequency = inverse_frequency

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, target, self.num_classes)
        probs = logits.float().softmax(dim=1)
        one_hot = F.one_hot(target, self.num_classes).permute(0, 3, 1, 2).to(probs.dtype)
        over_pixels = (0, 2, 3)
        counts = one_hot.sum(over_pixels)
        intersection = (probs * one_hot).sum(over_pixels)
        union = probs.sum(over_pixels) + counts
        weights = self._class_weights(counts)
        dice = (2 * weights * intersection + self.smooth) / (weights * union + self.smooth)
        return (1 - dice).mean()

    def _class_weights(self, counts: torch.Tensor) -> torch.Tensor:
        if not self.inverse_frequency:
            return torch.ones_like(counts)
        # An absent class counts as 1e10 pixels, as in the authors' code: a weight of about zero.
        inverse = 1.0 / torch.where(counts > 0, counts, torch.full_like(counts, 1e10))
        return inverse / inverse.sum()


class FocalLoss(nn.Module):
    """Multi-class focal loss: mean over pixels of -(1 - p_t)^gamma log p_t (gamma = 0 is cross-entropy)."""

    def __init__(self, num_classes: int, gamma: float = 2.0) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.gamma = gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, target, self.num_classes)
        log_pt = -F.cross_entropy(logits.float(), target, reduction="none")
        return (-((1 - log_pt.exp()) ** self.gamma) * log_pt).mean()


class CrossEntropyLoss(nn.CrossEntropyLoss):
    """Pixel-wise cross-entropy averaged over all pixels (torch's), with the shape check of the others."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        _check_shapes(logits, target, self.num_classes)
        return super().forward(logits.float(), target)


LOSSES: dict[str, Callable[[int], nn.Module]] = {
    "cross_entropy": CrossEntropyLoss,
    "dice": DiceLoss,
    "weighted_dice": lambda num_classes: DiceLoss(num_classes, inverse_frequency=True),
    "focal": FocalLoss,
}


def build_loss(name: str, num_classes: int) -> nn.Module:
    """The loss registered under `name` for `num_classes` classes."""
    loss_class = lookup("loss", name, LOSSES)
    if num_classes < 2:
        raise ValueError(f"a segmentation loss needs at least 2 classes; got num_classes={num_classes}")
    return loss_class(num_classes)
