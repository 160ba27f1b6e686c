"""Segmentation scores under two protocols; pixels labelled `UNLABELLED` are scored by neither.

`ConfusionMatrix` (the default, used for model selection and reported first) pools every pixel of the
evaluation set into one confusion matrix and derives the scores from it once.

Absent classes: a class with no label pixels and no predicted pixels has an undefined IoU and accuracy; it
is reported as NaN and left out of mIoU and mPA (NaN-mean), never counted as 0 or 1. A class with no label
pixels but some predicted pixels has IoU 0 (counted) and an undefined accuracy (NaN, left out of mPA).

`BatchMeanScores` is the authors' protocol, kept so our numbers can be set beside the paper's: per batch,
mIoU is torchmetrics' multiclass Jaccard index (macro; it leaves out classes absent from both the batch's
labels and predictions) and mPA is the mean over classes of TP / (TP + FN) with a class absent from the
batch's labels counting as 0; both are then averaged over batches. `training.evaluation` feeds it the
authors' batches (the paper's batch size, each test section with its mirror).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torchmetrics.functional.classification import multiclass_jaccard_index

from training.tasks import UNLABELLED


def confusion_counts(pred_labels: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(C, C) int64 pixel counts of one batch: row = label class, column = predicted class."""
    if pred_labels.shape != target.shape:
        raise ValueError(f"predictions {tuple(pred_labels.shape)} and labels {tuple(target.shape)} "
                         "must have the same shape")
    target = target.reshape(-1).long()
    pred_labels = pred_labels.reshape(-1).long().to(target.device)
    labelled = target != UNLABELLED
    if not bool(labelled.all()):
        target, pred_labels = target[labelled], pred_labels[labelled]
    if target.numel():
        bounds = torch.stack([target.min(), target.max(), pred_labels.min(), pred_labels.max()]).tolist()
        if min(bounds) < 0 or max(bounds) >= num_classes:
            raise ValueError(f"class values must lie in [0, {num_classes}); labels span "
                             f"[{bounds[0]}, {bounds[1]}], predictions [{bounds[2]}, {bounds[3]}]")
    flat = torch.bincount(target * num_classes + pred_labels, minlength=num_classes**2)
    return flat.reshape(num_classes, num_classes)


@dataclass(frozen=True)
class SegmentationScores:
    """Scores of one confusion matrix; per-class lists are indexed by class, NaN where undefined."""

    per_class_iou: list[float]
    per_class_accuracy: list[float]
    miou: float
    mpa: float
    overall_accuracy: float
    fwiou: float

    def as_dict(self) -> dict[str, float]:
        """Flat name -> value: miou, mpa, overall_accuracy, fwiou, iou_class_<c>, accuracy_class_<c>."""
        scores = {k: v for k, v in asdict(self).items() if not k.startswith("per_class")}
        scores.update({f"iou_class_{c}": v for c, v in enumerate(self.per_class_iou)})
        scores.update({f"accuracy_class_{c}": v for c, v in enumerate(self.per_class_accuracy)})
        return scores


def scores_from_confusion(matrix: np.ndarray) -> SegmentationScores:
    """Scores of a (C, C) confusion matrix (row = label, column = prediction); see the module docstring."""
    matrix = np.asarray(matrix, dtype=np.float64)
    total = matrix.sum()
    if total == 0:
        raise ValueError("the confusion matrix is empty: no pixel was evaluated")
    true_positive = np.diag(matrix)
    labelled = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = true_positive / (labelled + predicted - true_positive)
        accuracy = true_positive / labelled
    present = labelled > 0
    return SegmentationScores(
        per_class_iou=iou.tolist(),
        per_class_accuracy=accuracy.tolist(),
        miou=float(np.nanmean(iou)),
        mpa=float(np.nanmean(accuracy)),
        overall_accuracy=float(true_positive.sum() / total),
        fwiou=float((labelled[present] / total * iou[present]).sum()),
    )


class ConfusionMatrix:
    """A confusion matrix accumulated over a whole evaluation set (the default protocol)."""

    def __init__(self, num_classes: int) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2; got {num_classes}")
        self.num_classes = num_classes
        self._counts: torch.Tensor | None = None

    def update(self, pred_labels: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch of predicted class indices and labels of the same shape."""
        counts = confusion_counts(pred_labels, target, self.num_classes)
        self._counts = counts if self._counts is None else self._counts + counts.to(self._counts.device)

    @property
    def matrix(self) -> np.ndarray:
        """The accumulated (C, C) int64 counts: row = label class, column = predicted class."""
        if self._counts is None:
            return np.zeros((self.num_classes, self.num_classes), dtype=np.int64)
        return self._counts.cpu().numpy()

    def compute(self) -> SegmentationScores:
        return scores_from_confusion(self.matrix)


class BatchMeanScores:
    """The authors' protocol: per-batch mIoU and mPA, averaged over batches (see the module docstring)."""

    def __init__(self, num_classes: int) -> None:
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2; got {num_classes}")
        self.num_classes = num_classes
        self._miou: list[float] = []
        self._mpa: list[float] = []

    def update(self, pred_labels: torch.Tensor, target: torch.Tensor) -> None:
        """Score one batch of predicted class indices against its labels."""
        counts = confusion_counts(pred_labels, target, self.num_classes).double()
        labelled = counts.sum(dim=1)
        recall = torch.where(labelled > 0, counts.diagonal() / labelled.clamp(min=1), 0.0)
        self._mpa.append(float(recall.mean()))
        miou = multiclass_jaccard_index(pred_labels.long().to(target.device), target.long(), self.num_classes,
                                        average="macro", ignore_index=UNLABELLED, validate_args=False)
        self._miou.append(float(miou))

    def compute(self) -> dict[str, float]:
        """{"miou": ..., "mpa": ...}, each the mean of the per-batch scores."""
        if not self._miou:
            raise ValueError("no batch was scored")
        return {"miou": float(np.mean(self._miou)), "mpa": float(np.mean(self._mpa))}
