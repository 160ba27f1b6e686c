"""Losses: hand-worked values, the weighted dice's class weights, trainability and bad input."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from training.losses import LOSSES, build_loss

# One row of four pixels, labels [0, 0, 0, 1]; zero logits give p = 0.5 for both classes everywhere.
TARGET = torch.tensor([[[0, 0, 0, 1]]])
ZERO_LOGITS = torch.zeros(1, 2, 1, 4)


def test_unknown_loss_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="known: cross_entropy, dice, weighted_dice, focal"):
        build_loss("jaccard", 2)


def test_dice_by_hand() -> None:
    # class 0: I = 3 * 0.5 = 1.5, U = 4 * 0.5 + 3 = 5 -> dice (2*1.5 + 1) / (5 + 1) = 2/3, loss 1/3
    # class 1: I = 1 * 0.5 = 0.5, U = 4 * 0.5 + 1 = 3 -> dice (2*0.5 + 1) / (3 + 1) = 1/2, loss 1/2
    # mean over classes: (1/3 + 1/2) / 2 = 5/12
    assert build_loss("dice", 2)(ZERO_LOGITS, TARGET).item() == pytest.approx(5 / 12)


def test_weighted_dice_by_hand() -> None:
    # counts [3, 1] -> inverse [1/3, 1] -> normalized weights [1/4, 3/4]
    # class 0: (2 * 1/4 * 1.5 + 1) / (1/4 * 5 + 1) = 1.75 / 2.25 = 7/9  -> loss 2/9
    # class 1: (2 * 3/4 * 0.5 + 1) / (3/4 * 3 + 1) = 1.75 / 3.25 = 7/13 -> loss 6/13
    # mean: (2/9 + 6/13) / 2 = 40/117
    assert build_loss("weighted_dice", 2)(ZERO_LOGITS, TARGET).item() == pytest.approx(40 / 117)


def test_weighted_dice_ignores_a_class_absent_from_the_batch() -> None:
    # Labels all 0: counts [4, 0] -> weights ~[1, 4e-10]; class 1's term is (~0 + 1) / (~0 + 1) = 1 -> loss ~0
    # whatever the prediction. Class 0: I = 4 * 0.5 = 2, U = 2 + 4 = 6 -> dice 5/7, loss 2/7. Mean: 1/7.
    target = torch.zeros(1, 1, 4, dtype=torch.long)
    assert build_loss("weighted_dice", 2)(ZERO_LOGITS, target).item() == pytest.approx(1 / 7)
    # The plain dice does penalize predicting the absent class: I = 0, U = 2 -> dice 1/3, loss 2/3.
    assert build_loss("dice", 2)(ZERO_LOGITS, target).item() == pytest.approx((2 / 7 + 2 / 3) / 2)


def test_focal_by_hand_and_gamma_zero_is_cross_entropy() -> None:
    # p_t = 0.5 everywhere: (1 - 0.5)^2 * ln 2
    assert build_loss("focal", 2)(ZERO_LOGITS, TARGET).item() == pytest.approx(0.25 * math.log(2))
    logits = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    target = torch.randint(0, 3, (2, 5, 5), generator=torch.Generator().manual_seed(1))
    focal = LOSSES["focal"](3)
    focal.gamma = 0.0
    assert focal(logits, target).item() == pytest.approx(F.cross_entropy(logits, target).item(), rel=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_falls_as_logits_move_toward_the_labels(name: str) -> None:
    target = torch.randint(0, 3, (2, 6, 6), generator=torch.Generator().manual_seed(2))
    logits = torch.zeros(2, 3, 6, 6, requires_grad=True)
    loss_fn = build_loss(name, 3)
    optimizer = torch.optim.Adam([logits], lr=0.3)
    losses = []
    for _ in range(20):
        loss = loss_fn(logits, target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert (logits.argmax(dim=1) == target).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_shape_mismatch_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match=r"target must be \(B, H, W\)"):
        build_loss(name, 2)(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"logits must be \(B, 2, H, W\)"):
        build_loss(name, 2)(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long))
