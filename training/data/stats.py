"""Streaming statistics of sections, accumulated one sample at a time without temporary arrays."""

from __future__ import annotations

import numpy as np


def class_counts(labels: np.ndarray, num_classes: int, scratch: np.ndarray | None = None) -> np.ndarray:
    """Pixels of each class 0..num_classes-1 (values outside that range are not counted). `scratch`, a
    bool array of the labels' shape, avoids an allocation per class."""
    scratch = np.empty(labels.shape, dtype=bool) if scratch is None else scratch
    counts = np.empty(num_classes, dtype=np.int64)
    for label in range(num_classes):
        counts[label] = np.count_nonzero(np.equal(labels, label, out=scratch))
    return counts


class RunningMoments:
    """Count, mean and sum of squared deviations of all values seen (samples merged after Chan et al.),
    with their minimum and maximum."""

    def __init__(self) -> None:
        self.count = 0
        self.mean = 0.0
        self.squares = 0.0
        self.minimum = float("inf")
        self.maximum = float("-inf")
        self._centred: np.ndarray | None = None

    def add(self, values: np.ndarray, total: float | None = None) -> None:
        """Merge one sample (float32); `total`, its float64 sum, saves a pass when already known."""
        flat = values.reshape(-1)
        if not flat.size:
            return
        mean = (float(np.sum(flat, dtype=np.float64)) if total is None else total) / flat.size
        if self._centred is None or self._centred.shape != flat.shape:
            self._centred = np.empty(flat.shape, dtype=np.float32)
        centred = np.subtract(flat, np.float32(mean), out=self._centred, dtype=np.float32)
        squares = float(np.dot(centred, centred))
        merged = self.count + flat.size
        delta = mean - self.mean
        self.squares += squares + delta * delta * self.count * flat.size / merged
        self.mean += delta * flat.size / merged
        self.count = merged
        self.minimum = min(self.minimum, float(flat.min()))
        self.maximum = max(self.maximum, float(flat.max()))

    @property
    def std(self) -> float:
        return (self.squares / self.count) ** 0.5 if self.count else 0.0
