"""Metrics against hand-worked confusion matrices, the absent-class rule, and the two protocols."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.metrics import BatchMeanScores, ConfusionMatrix, scores_from_confusion

# Four classes; class 3 appears in neither labels nor predictions.
LABELS = torch.tensor([[0, 0, 0], [1, 1, 2]])
PREDICTIONS = torch.tensor([[0, 0, 1], [1, 2, 2]])
# rows = label, columns = prediction:
#   label 0: predicted 0, 0, 1 -> [2, 1, 0, 0]
#   label 1: predicted 1, 2    -> [0, 1, 1, 0]
#   label 2: predicted 2       -> [0, 0, 1, 0]
#   label 3: nothing           -> [0, 0, 0, 0]
EXPECTED_MATRIX = np.array([[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]])


def test_confusion_matrix_by_hand() -> None:
    confusion = ConfusionMatrix(4)
    confusion.update(PREDICTIONS[:1], LABELS[:1])
    confusion.update(PREDICTIONS[1:], LABELS[1:])
    np.testing.assert_array_equal(confusion.matrix, EXPECTED_MATRIX)
    scores = confusion.compute()
    # IoU = TP / (row + column - TP): 2/(3+2-2) = 2/3, 1/(2+2-1) = 1/3, 1/(1+2-1) = 1/2, 0/0 = NaN
    np.testing.assert_allclose(scores.per_class_iou, [2 / 3, 1 / 3, 1 / 2, math.nan])
    # accuracy (recall) = TP / row: 2/3, 1/2, 1/1, 0/0 = NaN
    np.testing.assert_allclose(scores.per_class_accuracy, [2 / 3, 1 / 2, 1.0, math.nan])
    # means over the three defined classes: (2/3 + 1/3 + 1/2) / 3 = 1/2; (2/3 + 1/2 + 1) / 3 = 13/18
    assert scores.miou == pytest.approx(1 / 2)
    assert scores.mpa == pytest.approx(13 / 18)
    assert scores.overall_accuracy == pytest.approx(4 / 6)
    # label frequencies 3/6, 2/6, 1/6: 1/2 * 2/3 + 1/3 * 1/3 + 1/6 * 1/2 = 19/36
    assert scores.fwiou == pytest.approx(19 / 36)


def test_a_class_predicted_but_never_labelled_counts_zero_iou_and_no_accuracy() -> None:
    # labels [0, 0, 1, 1], predictions [0, 2, 1, 1]: class 2 is predicted once, never labelled.
    # matrix: label 0 -> [1, 0, 1], label 1 -> [0, 2, 0], label 2 -> [0, 0, 0]
    # IoU: 1/(2+1-1) = 1/2, 2/(2+2-2) = 1, 0/(0+1-0) = 0 -> mIoU (1/2 + 1 + 0) / 3 = 1/2
    # accuracy: 1/2, 1, 0/0 = NaN -> mPA (1/2 + 1) / 2 = 3/4
    confusion = ConfusionMatrix(3)
    confusion.update(torch.tensor([0, 2, 1, 1]), torch.tensor([0, 0, 1, 1]))
    scores = confusion.compute()
    np.testing.assert_allclose(scores.per_class_iou, [1 / 2, 1.0, 0.0])
    assert math.isnan(scores.per_class_accuracy[2])
    assert scores.miou == pytest.approx(1 / 2)
    assert scores.mpa == pytest.approx(3 / 4)


def test_as_dict_flattens_per_class_scores() -> None:
    scores = scores_from_confusion(EXPECTED_MATRIX)
    flat = scores.as_dict()
    assert flat["miou"] == scores.miou and flat["fwiou"] == scores.fwiou
    assert flat["iou_class_0"] == pytest.approx(2 / 3) and math.isnan(flat["accuracy_class_3"])
    assert set(flat) == {"miou", "mpa", "overall_accuracy", "fwiou"} | {
        f"{kind}_class_{c}" for kind in ("iou", "accuracy") for c in range(4)}


def test_bad_input_is_a_clear_error() -> None:
    confusion = ConfusionMatrix(2)
    with pytest.raises(ValueError, match=r"same shape"):
        confusion.update(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 2\); labels span \[0, 2\]"):
        confusion.update(torch.tensor([0, 1]), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="empty"):
        confusion.compute()
    with pytest.raises(ValueError, match="no batch"):
        BatchMeanScores(2).compute()


def _both_protocols(batches: list[tuple[list[int], list[int]]]) -> tuple[dict[str, float], dict[str, float]]:
    pooled, batch_mean = ConfusionMatrix(2), BatchMeanScores(2)
    for predictions, labels in batches:
        pooled.update(torch.tensor(predictions), torch.tensor(labels))
        batch_mean.update(torch.tensor(predictions), torch.tensor(labels))
    scores = pooled.compute()
    return {"miou": scores.miou, "mpa": scores.mpa}, batch_mean.compute()


def test_batch_mean_mpa_counts_a_class_absent_from_a_batch_as_zero() -> None:
    # Batch A: labels and predictions all 0 -> Jaccard (class 1 absent from both, left out) = 1,
    #          mPA = (1 + 0) / 2 = 1/2 (class 1 has no label pixel: counts 0).
    # Batch B: labels [0, 1], predictions [0, 1] -> mIoU 1, mPA 1.
    # Batch mean: mIoU 1, mPA 3/4. Pooled: every pixel right -> mIoU 1, mPA 1.
    pooled, batch_mean = _both_protocols([([0, 0, 0], [0, 0, 0]), ([0, 1], [0, 1])])
    assert pooled == pytest.approx({"miou": 1.0, "mpa": 1.0})
    assert batch_mean == pytest.approx({"miou": 1.0, "mpa": 3 / 4})


def test_batch_mean_miou_weighs_small_batches_like_large_ones() -> None:
    # Batch A: labels [0, 0, 1, 1], predictions [0, 0, 0, 1]: IoU 2/(2+3-2) = 2/3 and 1/(2+1-1) = 1/2
    #          -> mIoU 7/12; mPA (1 + 1/2) / 2 = 3/4.
    # Batch B: labels [0, 1], predictions [0, 1] -> mIoU 1, mPA 1.
    # Batch mean: mIoU (7/12 + 1) / 2 = 19/24, mPA (3/4 + 1) / 2 = 7/8.
    # Pooled matrix [[3, 0], [1, 2]]: IoU 3/(3+4-3) = 3/4, 2/(3+2-2) = 2/3 -> mIoU 17/24;
    #                                 accuracy 3/3, 2/3 -> mPA 5/6.
    pooled, batch_mean = _both_protocols([([0, 0, 0, 1], [0, 0, 1, 1]), ([0, 1], [0, 1])])
    assert pooled == pytest.approx({"miou": 17 / 24, "mpa": 5 / 6})
    assert batch_mean == pytest.approx({"miou": 19 / 24, "mpa": 7 / 8})


def test_the_two_protocols_agree_on_a_single_batch_with_every_class_present() -> None:
    labels = torch.randint(0, 2, (3, 8, 8), generator=torch.Generator().manual_seed(0))
    predictions = torch.where(torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(1)) < 0.8,
                              labels, 1 - labels)
    pooled, batch_mean = ConfusionMatrix(2), BatchMeanScores(2)
    pooled.update(predictions, labels)
    batch_mean.update(predictions, labels)
    scores = pooled.compute()
    assert batch_mean.compute() == pytest.approx({"miou": scores.miou, "mpa": scores.mpa})
