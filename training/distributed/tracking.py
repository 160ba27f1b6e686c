"""The tracker of a data-parallel training's other processes: only the main process (rank 0) opens a run and
logs into it, the others record nothing, so one training is one run and one model version however many
processes train it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from training.distributed.context import Distributed
from training.tracking import ModelRef, Tracker


class SilentTracker:
    """A `Tracker` that records nothing (what a non-main process trains with)."""

    def log_params(self, params: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        pass

    def log_table(self, table: pd.DataFrame, name: str) -> None:
        pass

    def log_artifact(self, path: Path) -> None:
        pass

    def log_model(self, model: nn.Module, name: str) -> ModelRef:
        return ModelRef(uri="")

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        pass


RunOpener = Callable[[], AbstractContextManager[Tracker]]


def main_process_run(distributed: Distributed, open_run: RunOpener) -> AbstractContextManager[Tracker]:
    """The run `open_run` opens, on the main process; a `SilentTracker` on every other (which opens none)."""
    return open_run() if distributed.is_main else nullcontext(SilentTracker())
