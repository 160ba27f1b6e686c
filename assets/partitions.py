"""The benchmark's partitions (per task; per task x model, `unet` or `<network>-<mode>`), and the name of
the DVC stage each asset corresponds to (asset metadata `dvc_stage`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import dagster as dg

from training.stages.catalog import stage

TASK = "task"
MODEL = "model"
DVC_STAGE = "dvc_stage"

AssetEvents = Iterator[dg.AssetCheckResult | dg.MaterializeResult]
"""What a checked asset yields: its check results, then its materialization."""


def stage_asset(name: str) -> dict[str, object]:
    """The asset arguments of stage `name` of `training.stages.catalog`: its asset name, and metadata
    naming the dvc.yaml stage that does the same work."""
    entry = stage(name)
    return {"name": entry.asset, "metadata": {DVC_STAGE: entry.name}}


def task_partitions(tasks: Sequence[str]) -> dg.StaticPartitionsDefinition:
    return dg.StaticPartitionsDefinition(list(tasks))


def model_partitions(tasks: Sequence[str], models: Sequence[str]) -> dg.MultiPartitionsDefinition:
    """Task x model; a key reads `<model>|<task>` (Dagster orders the dimensions by name)."""
    return dg.MultiPartitionsDefinition(
        {TASK: task_partitions(tasks), MODEL: dg.StaticPartitionsDefinition(list(models))}
    )


def task_and_model(context: dg.AssetExecutionContext) -> tuple[str, str]:
    """The task and model of the partition being materialized."""
    keys = context.partition_key.keys_by_dimension
    return keys[TASK], keys[MODEL]
