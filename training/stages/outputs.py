"""What each stage writes, relative to the project root: the paths `dvc.yaml` declares as outputs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from training.catalog import ENCODER_SEPARATOR
from training.data.layout import prepared_task_dir
from training.figures import HISTORY_FIGURE
from training.settings import ProjectPaths, Settings
from training.stages.catalog import stage as catalog_stage

METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
ARTIFACTS_DIR = "artifacts"
SEEDS_DIR = "seeds"
REPORT_FILES = ("benchmark.md", "miou.csv", "mpa.csv", "miou_std.csv", "mpa_std.csv", "authors_miou.csv",
                "authors_mpa.csv", "authors_miou_std.csv", "authors_mpa_std.csv")


def stage_outputs(settings: Settings, stage: str, task: str | None = None,
                  model: str | None = None) -> list[str]:
    """The paths (relative to the root) that one stage instance writes (`task` names the survey of the
    `predictions` stage, whose partitions are surveys)."""
    paths = ProjectPaths.of(settings, Path("."))
    run = paths.run_dir(task or "", model or "")
    outputs = {
        "raw": [paths.raw_dir],
        "prepare": [prepared_task_dir(paths.prepared_dir, task or "")],
        "train": [run / METRICS_FILE, run / HISTORY_FILE, run / HISTORY_FIGURE, run / SEEDS_DIR],
        "report": [paths.reports_dir / name for name in REPORT_FILES],
        "predictions": [paths.root / settings.predict.output_dir / (task or "")],
    }
    return [paths.relative(path) for path in outputs[stage]]


def dvc_stage_instance(settings: Settings, stage: str, task: str | None = None,
                       model: str | None = None) -> str:
    """The dvc.yaml name of one stage instance (`train@das-mla-lora`): a training of the encoder scan
    is `train-encoder@<task>-<model>-<encoder>`, DVC's matrix naming each axis's value."""
    entry = catalog_stage(stage)
    if entry.encoder_axis and model in settings.encoder_scan.trainings():
        base, _, encoder = str(model).partition(ENCODER_SEPARATOR)
        return f"{entry.encoder_axis}@{task}-{base}-{encoder}"
    values = [value for value in (task, model) if value]
    return f"{stage}@{'-'.join(values)}" if values else stage


def benchmark_id(settings: Settings) -> str:
    """A name for this configuration of the benchmark: the profile and a digest of the settings."""
    text = json.dumps(settings.model_dump(mode="json"), sort_keys=True)
    return f"{settings.profile}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"
