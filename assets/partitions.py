"""The benchmark's partitions (per task; per task x model, `unet` or `<network>-<mode>`), the name of the
DVC stage each asset corresponds to (asset metadata `dvc_stage`), and the events of one partition.

A partitioned asset materializes every partition of its run: one run per stage when a backfill (the UI's
"Materialize all") or `geofm benchmark` asks for all of them, instead of one run (and its launch cost) per
partition. Each partition still gets its own materialization and check evaluations
(`partition_events`), as a one-partition run would have recorded them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import dagster as dg

# The target of a check evaluation: dagster 1.13 exports AssetCheckEvaluation, not this.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from training.stages.catalog import stage

TASK = "task"
MODEL = "model"
DVC_STAGE = "dvc_stage"

AssetEvents = Iterator[dg.AssetCheckResult | dg.MaterializeResult]
"""What a checked asset yields: its check results, then its materialization."""
PartitionEvents = Iterator[dg.AssetMaterialization | dg.AssetCheckEvaluation | dg.Output]
"""What a partitioned, checked asset yields: each partition's materialization and check evaluations."""
ONE_RUN = dg.BackfillPolicy.single_run()
"""A backfill of a partitioned asset runs as one run over all its partitions."""


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


def model_partition_key(task: str, model: str) -> str:
    """The partition key of `task` x `model` (`<model>|<task>`)."""
    return str(dg.MultiPartitionKey({TASK: task, MODEL: model}))


def _target(context: dg.AssetExecutionContext,
            partition: str) -> AssetCheckEvaluationTargetMaterializationData | None:
    """The materialization a check of `partition` judges: the one just recorded (as Dagster looks it up)."""
    wanted = dg.AssetRecordsFilter(asset_key=context.assets_def.key, asset_partitions=[partition])
    records = context.instance.fetch_materializations(wanted, limit=1).records
    if not records:
        return None
    record = records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        run_id=record.event_log_entry.run_id, storage_id=record.storage_id, timestamp=record.timestamp)


def check_evaluations(context: dg.AssetExecutionContext, partition: str,
                      checks: Iterable[dg.AssetCheckResult]) -> Iterator[dg.AssetCheckEvaluation]:
    """The check results of `partition` as its evaluations (an AssetCheckResult would name the run's
    partition, and a run over several has none)."""
    key = context.assets_def.key
    for result in checks:
        spec = context.assets_def.get_spec_for_check_key(dg.AssetCheckKey(key, result.check_name))
        yield dg.AssetCheckEvaluation(
            asset_key=key, check_name=spec.name, passed=result.passed, metadata=result.metadata,
            target_materialization_data=_target(context, partition), severity=result.severity,
            description=result.description, blocking=spec.blocking, partition=partition)


def partition_events(context: dg.AssetExecutionContext, partition: str, metadata: dict[str, object],
                     checks: Iterable[dg.AssetCheckResult]) -> PartitionEvents:
    """`partition`'s materialization with `metadata`, then the evaluations of its `checks`."""
    yield dg.AssetMaterialization(asset_key=context.assets_def.key, partition=partition, metadata=metadata)
    yield from check_evaluations(context, partition, checks)


def checks_done(context: dg.AssetExecutionContext) -> Iterator[dg.Output]:
    """The (empty) outputs of the asset's checks, which Dagster requires once every partition's
    evaluations are recorded."""
    for check_key in context.assets_def.check_keys:
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key))


def in_settings_order(keys: Sequence[str], order: Sequence[str]) -> list[str]:
    """The run's partition keys (`context.partition_keys`) in the order of the settings (`order`)."""
    rank = {key: index for index, key in enumerate(order)}
    return sorted(keys, key=rank.__getitem__)
