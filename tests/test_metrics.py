"""Metrics against hand-worked confusion matrices, the absent-class rule, and the two protocols."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training.data.dataset import PreparedDataset
from training.data.prepare import prepare_task
from training.data.synthetic import write_synthetic_dataset
from training.evaluation import evaluate_with_mirrors
from training.metrics import BatchMeanScores, ConfusionMatrix, scores_from_confusion
from training.tasks import get_task

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


SALT = get_task("salt").with_shape((16, 12))


@pytest.fixture(scope="module")
def salt_test_split(tmp_path_factory: pytest.TempPathFactory) -> PreparedDataset:
    """Five synthetic salt test sections (two classes), prepared as the pipeline does, with mirrors."""
    root = tmp_path_factory.mktemp("salt")
    write_synthetic_dataset(root / "raw", {"salt": SALT}, train_count=4, test_count=5, seed=3)
    prepare_task(root / "raw", root / "prepared", SALT, val_fraction=0.25, split_seed=0)
    return PreparedDataset(root / "prepared", "salt", "test")


def _by_hand(predictions: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """One batch's (mIoU, mPA) as the authors score it: IoU over the classes seen in labels or predictions,
    accuracy TP / (TP + FN) with a class absent from the labels counting 0, over both classes."""
    ious, accuracies = [], []
    for c in (0, 1):
        tp = np.sum((predictions == c) & (labels == c))
        fp = np.sum((predictions == c) & (labels != c))
        fn = np.sum((predictions != c) & (labels == c))
        if tp + fp + fn:
            ious.append(tp / (tp + fp + fn))
        accuracies.append(tp / (tp + fn) if tp + fn else 0.0)
    return float(np.mean(ious)), float(np.mean(accuracies))


class RisingToTheRight(torch.nn.Module):
    """Class 1 where the amplitude exceeds its left neighbour's: a rule that a mirror image changes, so the
    scores tell whether mirrors were evaluated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rise = x - torch.nn.functional.pad(x, (1, 0, 0, 0), mode="replicate")[..., :-1]
        return torch.cat([-rise, rise], dim=1)


def _rising(sections: np.ndarray) -> np.ndarray:
    left = np.concatenate([sections[..., :1], sections[..., :-1]], axis=-1)
    return (sections > left).astype(np.int64)


def test_evaluation_with_mirrors_follows_both_protocols(salt_test_split: PreparedDataset) -> None:
    dataset = salt_test_split
    count = dataset.num_samples
    sections = np.stack([dataset.read_sample(i)[0] for i in range(count)])
    labels = np.stack([dataset.read_sample(i)[1] for i in range(count)]).astype(np.int64)
    predictions, mirror_predictions = _rising(sections), _rising(sections[..., ::-1])

    result = evaluate_with_mirrors(RisingToTheRight(), dataset, num_classes=2, batch_size=2, device="cpu")

    # The authors' batches: samples 0-1, 2-3, 4, each with its mirror; means over the three batches.
    per_batch = [_by_hand(np.concatenate([predictions[s], mirror_predictions[s]]),
                          np.concatenate([labels[s], labels[s][..., ::-1]]))
                 for s in (slice(0, 2), slice(2, 4), slice(4, 5))]
    assert result.batch_mean["miou"] == pytest.approx(np.mean([miou for miou, _ in per_batch]))
    assert result.batch_mean["mpa"] == pytest.approx(np.mean([mpa for _, mpa in per_batch]))
    without_mirrors = [_by_hand(predictions[s], labels[s]) for s in (slice(0, 2), slice(2, 4), slice(4, 5))]
    assert result.batch_mean["miou"] != pytest.approx(np.mean([miou for miou, _ in without_mirrors]))
    # Pooled: the five unmirrored sections only.
    expected = np.array([[np.sum((labels == r) & (predictions == c)) for c in (0, 1)] for r in (0, 1)])
    np.testing.assert_array_equal(result.confusion, expected)
    assert result.confusion.sum() == count * 16 * 12
    assert result.scores.miou == pytest.approx(scores_from_confusion(expected).miou)
