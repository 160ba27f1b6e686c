"""Segmentation losses by name: `build_loss(name, num_classes)` -> a module called as loss(logits, target).

logits are (B, C, H, W) raw scores, target is (B, H, W) int64 class indices in [0, C), or `UNLABELLED`
for a pixel without a class, which no loss counts (its terms are multiplied by an exact 0, every other
pixel's by an exact 1, so a fully labelled batch gives the same bits as without the mask).

Every loss is a function of additive statistics of the batch (`statistics`: sums over its pixels, such as
per-class intersections or the summed per-pixel loss and the pixel count) and computes its value from them
(`from_statistics`); `loss(logits, target)` is `from_statistics(statistics(logits, target))`. Statistics of
parts of a batch add up to the batch's, which is what makes gradient accumulation exact
(`training.accumulation`), also for the dice losses, whose value is not a sum over pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from training.lookup import lookup
from training.tasks import UNLABELLED


def labelled(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`target` with unlabelled pixels set to class 0, and the mask of labelled pixels."""
    mask = target != UNLABELLED
    return torch.where(mask, target, torch.zeros_like(target)), mask


def _check_shapes(logits: torch.Tensor, target: torch.Tensor, num_classes: int) -> None:
    if logits.ndim != 4 or logits.shape[1] != num_classes:
        raise ValueError(f"logits must be (B, {num_classes}, H, W); got {tuple(logits.shape)}")
    if target.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"target must be (B, H, W) = {tuple(logits.shape[:1] + logits.shape[2:])}; "
                         f"got {tuple(target.shape)}")


class SegmentationLoss(nn.Module):
    """A loss computed from additive per-batch statistics; subclasses define both halves."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.num_classes = num_classes

    def statistics(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """A 1-D float32 tensor of sums over the pixels of the batch (differentiable in `logits`): the
        statistics of a batch are the sum of those of its parts."""
        _check_shapes(logits, target, self.num_classes)
        return self._statistics(logits.float(), target)

    def _statistics(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def from_statistics(self, statistics: torch.Tensor) -> torch.Tensor:
        """The loss of a batch from its statistics (a scalar)."""
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.from_statistics(self.statistics(logits, target))


class DiceLoss(SegmentationLoss):
    """Soft dice over the softmax against the one-hot target: mean over classes of 1 - dice_c.

    dice_c = (2 w_c I_c + smooth) / (w_c U_c + smooth), with I_c = sum(p_c t_c) and U_c = sum(p_c) + sum(t_c)
    over the whole batch. With `inverse_frequency` the weight w_c of a class is the inverse of its pixel
    count in the batch's target, normalized to sum to 1, and a class absent from the batch gets a weight of
    about zero (its term is then about 0): the paper's weighted dice. Without it every w_c is 1.
    Statistics: the per-class pixel counts of the target, intersections I_c and sums of p_c (3 C values).
    """

    def __init__(self, num_classes: int, smooth: float = 1.0, inverse_frequency: bool = False) -> None:
        super().__init__(num_classes)
        self.smooth = smooth
        self.inverse_frequency = inverse_frequency

    def _statistics(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target, mask = labelled(target)
        weight = mask[:, None].to(logits.dtype)
        probs = logits.softmax(dim=1) * weight
        one_hot = F.one_hot(target, self.num_classes).permute(0, 3, 1, 2).to(probs.dtype) * weight
        over_pixels = (0, 2, 3)
        intersection = (probs * one_hot).sum(over_pixels)
        return torch.cat([one_hot.sum(over_pixels), intersection, probs.sum(over_pixels)])

    def from_statistics(self, statistics: torch.Tensor) -> torch.Tensor:
        counts, intersection, probability_sums = statistics.view(3, self.num_classes)
        union = probability_sums + counts
        weights = self._class_weights(counts)
        dice = (2 * weights * intersection + self.smooth) / (weights * union + self.smooth)
        return (1 - dice).mean()

    def _class_weights(self, counts: torch.Tensor) -> torch.Tensor:
        if not self.inverse_frequency:
            return torch.ones_like(counts)
        # An absent class counts as 1e10 pixels, as in the authors' code: a weight of about zero.
        inverse = 1.0 / torch.where(counts > 0, counts, torch.full_like(counts, 1e10))
        return inverse / inverse.sum()


class PixelMeanLoss(SegmentationLoss):
    """A mean over pixels of a per-pixel loss; statistics: the summed per-pixel loss and the pixel count."""

    def _per_pixel(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _statistics(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        per_pixel = self._per_pixel(logits, target)
        count = (target != UNLABELLED).sum().to(per_pixel.dtype)
        return torch.stack([per_pixel.sum(), count])

    def from_statistics(self, statistics: torch.Tensor) -> torch.Tensor:
        return statistics[0] / statistics[1]


class FocalLoss(PixelMeanLoss):
    """Multi-class focal loss: mean over pixels of -(1 - p_t)^gamma log p_t (gamma = 0 is cross-entropy)."""

    def __init__(self, num_classes: int, gamma: float = 2.0) -> None:
        super().__init__(num_classes)
        self.gamma = gamma

    def _per_pixel(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_pt = -F.cross_entropy(logits, target, reduction="none", ignore_index=UNLABELLED)
        return -((1 - log_pt.exp()) ** self.gamma) * log_pt


class CrossEntropyLoss(PixelMeanLoss):
    """Pixel-wise cross-entropy averaged over all pixels."""

    def _per_pixel(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, reduction="none", ignore_index=UNLABELLED)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # torch's own mean: its rounding differs from sum / count in the last bit, and training without
        # accumulation stays bit-identical to what it was.
        _check_shapes(logits, target, self.num_classes)
        return F.cross_entropy(logits.float(), target, ignore_index=UNLABELLED)


LOSSES: dict[str, Callable[[int], SegmentationLoss]] = {
    "cross_entropy": CrossEntropyLoss,
    "dice": DiceLoss,
    "weighted_dice": lambda num_classes: DiceLoss(num_classes, inverse_frequency=True),
    "focal": FocalLoss,
}


def build_loss(name: str, num_classes: int) -> SegmentationLoss:
    """The loss registered under `name` for `num_classes` classes."""
    loss_class = lookup("loss", name, LOSSES)
    if num_classes < 2:
        raise ValueError(f"a segmentation loss needs at least 2 classes; got num_classes={num_classes}")
    return loss_class(num_classes)
