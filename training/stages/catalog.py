"""The benchmark's stages, declared once: the `dvc.yaml` stage and `geofm` command of each, the Dagster
asset that does the same work, the options naming one instance of it, and a one-line summary. The CLI,
the Dagster jobs, the assets' `dvc_stage` metadata and the stage outputs are derived from this list, and a
test keeps `dvc.yaml` in line with it. Imports nothing heavy: the CLI's parser reads it."""

from __future__ import annotations

from dataclasses import dataclass

from training.lookup import lookup


@dataclass(frozen=True)
class Stage:
    """One stage: `name` (the dvc.yaml stage and the `geofm` command), `asset` (the Dagster asset and
    job), `instance_options` (the command's options naming one instance: a task, a task and a model, a
    survey), `summary` (the command's help and the job's description), and whether it belongs to the
    benchmark proper (`benchmark`: run in order by `geofm benchmark`; the survey predictions are not)."""

    name: str
    asset: str
    instance_options: tuple[str, ...]
    summary: str
    benchmark: bool = True
    encoder_axis: str | None = None
    """The dvc.yaml stage that runs this command for the encoder scan (`encoder_scan:` in params.yaml),
    beside the stage of the plain models: DVC's matrix reads the scan's lists directly."""


STAGES: tuple[Stage, ...] = (
    Stage("raw", "raw_data", (), "Write or fetch the raw data, then validate every file."),
    Stage("prepare", "prepared_data", ("task",),
          "Prepare one task's arrays and data card, then validate them."),
    Stage("train", "trained_model", ("task", "model"), "Train and test one model, tracked in MLflow.",
          encoder_axis="train-encoder"),
    Stage("report", "benchmark_report", (), "Build both tables (ours beside the paper's), log them to MLflow "
          "and print them."),
    Stage("predictions", "predictions", ("survey",),
          "Segment one configured survey (predict.surveys) with its task's best model.", benchmark=False),
)
"""In the order they run."""


def dvc_stage_names() -> list[str]:
    """The stages of dvc.yaml in order: each catalog stage, then its encoder-axis stage if it has one."""
    return [name for entry in STAGES for name in (entry.name, entry.encoder_axis) if name]


def stage(name: str) -> Stage:
    """The stage called `name` (an error lists the known ones)."""
    return lookup("stage", name, {entry.name: entry for entry in STAGES})
