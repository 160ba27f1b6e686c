"""How training reports to the outside world, without knowing which tracker listens.

The stage functions take a `Tracker`; the orchestration layer passes an MLflow one
(`pipelines.tracking.tracker.MlflowTracker`), tests pass a recording one (`tests/recording_tracker.py`).
A tracker is also a fit callback (`on_epoch_end`), so per-epoch metrics reach it from the training loop.
A `TrainingStore` (`pipelines.tracking.store.BenchmarkStore`) opens the run a training logs into and,
once the run has finished, registers and promotes its model; the same store is the `ReportStore` the
report is logged to and the `ModelSource` survey predictions load models from. This module is the one home
of these interfaces; tests pass any object with their methods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from training.settings import Settings


@dataclass(frozen=True)
class ModelRef:
    """Where a logged model can be loaded from again."""

    uri: str
    registered_name: str | None = None
    version: str | None = None


class Tracker(Protocol):
    """What a stage reports: parameters, metrics, tables, files and the trained model."""

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def log_table(self, table: pd.DataFrame, name: str) -> None: ...

    def log_artifact(self, path: Path) -> None: ...

    def log_model(self, model: nn.Module, name: str) -> ModelRef: ...

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None: ...


class RunTracker(Tracker, Protocol):
    """A tracker of one stored run, which it can name and link to."""

    run_id: str

    @property
    def run_url(self) -> str: ...


@dataclass(frozen=True)
class Publication:
    """A finished training's model as registered: its version, whether the best alias moved to it now
    (`promoted`) or is on it at all (`best`: promoted now or before), its run."""

    model: ModelRef
    promoted: bool
    run_url: str
    best: bool = False

    @property
    def best_note(self) -> str:
        """How the version stands against the best alias, in words: what the CLI and Dagster say."""
        if self.promoted:
            return "promoted to best"
        return "already the best version" if self.best else "not the best version"


class TrainingStore(Protocol):
    """Where trainings are recorded (`pipelines.tracking.store.BenchmarkStore`)."""

    def training_run(self, settings: Settings, task: str, model: str, launcher: str, training_id: str,
                     seed: int) -> AbstractContextManager[RunTracker]: ...

    def finished_run(self, training_id: str) -> str | None: ...

    def publish(self, run_id: str, logged_model_uri: str, task: str, model: str,
                val_miou: float) -> Publication: ...



class ReportStore(Protocol):
    """Where the benchmark tables are logged."""

    def log_report(self, settings: Settings, tables: Mapping[str, pd.DataFrame],
                   scale: Mapping[str, pd.DataFrame] | None = None) -> None: ...


class ModelSource(Protocol):
    """Where registered models are found and loaded."""

    def best_model_of_task(self, task: str, models: Sequence[str]) -> str: ...

    def load_model(self, reference: str) -> nn.Module: ...

    def model_provenance(self, reference: str) -> dict[str, str]:
        """The model's URI and the registered name, version and run it resolves to."""
        ...
