"""The callbacks `fit` tells after each epoch, and the record beside the checkpoint of the last epoch they
were told of: a training killed between writing an epoch's checkpoint and telling the callbacks resumes
after that epoch, and tells them of it first, so a tracker's curve has every epoch once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from training.atomic import write_atomic

TOLD_FILE = "told.txt"
"""Beside `last.pt`: the number of the last epoch the callbacks were told of (absent: none yet)."""


class FitCallback(Protocol):
    """Told after each epoch's checkpoint is written; an exception it raises stops `fit`."""

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...


class EpochAnnouncer:
    """Tells `callbacks` of each epoch once, across kills and resumes, recording it in `folder/told.txt`."""

    def __init__(self, callbacks: Sequence[FitCallback], folder: Path) -> None:
        self.callbacks, self.path = tuple(callbacks), Path(folder) / TOLD_FILE

    def told(self) -> int:
        """The last epoch the callbacks were told of, 0 when none was."""
        if not self.path.is_file():
            return 0
        text = self.path.read_text().strip()
        if not text.isdigit():
            raise ValueError(f"{self.path}: expected the number of the last epoch told, got {text!r}")
        return int(text)

    def tell(self, epoch: int, metrics: dict[str, float]) -> None:
        """Tell every callback of `epoch`, then record it as told."""
        for callback in self.callbacks:
            callback.on_epoch_end(epoch, dict(metrics))
        write_atomic(self.path, f"{epoch}\n")

    def catch_up(self, history: Sequence[dict[str, float]]) -> None:
        """Tell the callbacks of the epochs of `history` (a resumed checkpoint's) they were not told of."""
        told = self.told()
        for entry in history:
            if entry["epoch"] > told:
                self.tell(int(entry["epoch"]), {k: v for k, v in entry.items() if k != "epoch"})
