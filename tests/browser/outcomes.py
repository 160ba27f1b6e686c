"""What the UIs should show, read from the files the stages wrote (never from a UI): each training's check
verdict and the report's tables."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from training.report import benchmark_tables
from training.settings import Project
from training.stages.outputs import METRICS_FILE


@dataclass(frozen=True)
class CheckOutcome:
    """The `beats_majority_baseline` verdict of one trained_model partition."""

    task: str
    model: str
    passed: bool
    severity: str
    """`ERROR`, or `WARN` where the encoder is known to be random (a ViT with `model.weights: none`)."""

    @property
    def partition(self) -> str:
        """The partition key as Dagster writes it (dimensions by name: model, then task)."""
        return f"{self.model}|{self.task}"


def _metrics(project: Project, task: str, model: str) -> dict:
    return json.loads((project.paths.run_dir(task, model) / METRICS_FILE).read_text())


def check_outcomes(root: Path) -> list[CheckOutcome]:
    """Every task x model's verdict: passed when the test mIoU beats the majority-class baseline."""
    project = Project.load(root)
    settings, outcomes = project.settings, []
    for task in settings.tasks:
        for model in settings.models:
            metrics = _metrics(project, task, model)
            random_encoder = model != "unet" and settings.model.weights == "none"
            outcomes.append(CheckOutcome(task, model, metrics["miou"] > metrics["majority_baseline_miou"],
                                         "WARN" if random_encoder else "ERROR"))
    return outcomes


def report_tables(root: Path) -> dict[str, pd.DataFrame]:
    """The mIoU and mPA tables (networks x task titles, NaN where nothing trained) from metrics.json."""
    project = Project.load(root)
    tasks, models = project.settings.tasks, project.settings.models
    return benchmark_tables(_metrics(project, task, model) for task in tasks for model in models)
