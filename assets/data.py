"""The data assets: the raw record (or its synthetic stand-in) and the prepared arrays per task."""

from collections.abc import Callable

import dagster as dg

from assets.partitions import (
    ONE_RUN,
    AssetEvents,
    PartitionEvents,
    check_evaluations,
    checks_done,
    in_settings_order,
    partition_events,
    stage_asset,
)
from training.data.validate import DataValidationError, ValidationSummary
from training.settings import Project
from training.stages.outputs import stage_outputs
from training.stages.prepare import prepare, validate_prepared_data
from training.stages.raw import materialize_raw, validate_raw_data

RAW_FILES_VALID = "raw_files_valid"
PREPARED_ARRAYS_VALID = "prepared_arrays_valid"


def validation_check(name: str, validate: Callable[[], list[ValidationSummary]]) -> dg.AssetCheckResult:
    """The data layer's validation as a check result: the samples checked, or the file at fault."""
    try:
        summaries = validate()
    except DataValidationError as error:
        return dg.AssetCheckResult(check_name=name, passed=False, metadata={"error": str(error)})
    return dg.AssetCheckResult(
        check_name=name, passed=True,
        metadata={"samples": {s.task: s.counts for s in summaries},
                  "megabytes_checked": round(sum(s.bytes_checked for s in summaries) / 2**20, 2)},
    )


@dg.asset(
    check_specs=[dg.AssetCheckSpec(RAW_FILES_VALID, asset="raw_data", blocking=True,
                                   description="raw files sized as the task says; labels in range; no NaN")],
    **stage_asset("raw"),
    kinds={"numpy"},
)
def raw_data(project: dg.ResourceParam[Project]) -> AssetEvents:
    """Every task's raw samples in the Zenodo layout: the record itself, or synthetic geophysics (demo)."""
    settings = project.settings
    raw_dir = materialize_raw(settings, project.root)
    check = validation_check(RAW_FILES_VALID,
                             lambda: list(validate_raw_data(settings, project.root).values()))
    yield check
    if not check.passed:
        raise dg.Failure(f"raw data failed validation: {check.metadata['error'].value}")
    yield dg.MaterializeResult(metadata={"path": dg.MetadataValue.path(str(raw_dir)),
                                         "source": settings.data.source,
                                         "outputs": stage_outputs(settings, "raw")})


def _prepared(context: dg.AssetExecutionContext, project: Project, task: str) -> PartitionEvents:
    """One task's arrays prepared and validated: its materialization and check, or its failed check."""
    settings = project.settings
    prepared = prepare(settings, project.root, task)
    check = validation_check(PREPARED_ARRAYS_VALID,
                             lambda: [validate_prepared_data(settings, project.root, task)])
    if not check.passed:
        yield from check_evaluations(context, task, [check])
        raise dg.Failure(f"prepared data of task {task!r} failed validation: {check.metadata['error'].value}")
    yield from partition_events(context, task, {
        "path": dg.MetadataValue.path(str(prepared.folder)),
        "data_card": dg.MetadataValue.md(prepared.card.to_markdown(floatfmt=".4g")),
        "samples": {split: int(count) for split, count in prepared.card["samples"].items()},
        "outputs": stage_outputs(settings, "prepare", task=task),
    }, [check])


def build_prepared_data(partitions: dg.StaticPartitionsDefinition) -> dg.AssetsDefinition:
    """The prepared-data asset over `partitions` (one per task); a backfill prepares them all in one run."""
    tasks = partitions.get_partition_keys()

    @dg.asset(
        partitions_def=partitions,
        backfill_policy=ONE_RUN,
        output_required=False,
        deps=["raw_data"],
        check_specs=[dg.AssetCheckSpec(PREPARED_ARRAYS_VALID, asset="prepared_data", blocking=True,
                                       partitions_def=partitions,
                                       description="arrays, stats.json and splits.json agree with the task")],
        **stage_asset("prepare"),
        kinds={"numpy"},
    )
    def prepared_data(context: dg.AssetExecutionContext,
                      project: dg.ResourceParam[Project]) -> PartitionEvents:
        """Each task's train/val/test arrays (val carved from the record's train set), stats and data card."""
        for task in in_settings_order(context.partition_keys, tasks):
            yield from _prepared(context, project, task)
        yield from checks_done(context)

    return prepared_data
