"""The trained-model asset: one network (and fine-tuning mode) trained and tested on one task, per
partition; a run materializes every partition it is given (one run for a whole backfill on a machine that
trains one at a time). A training whose every seed already finished identically is answered from its
files and the store's record (the `reuse` resource) before any device is leased or the stage runs."""

import json
import logging
import math
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from assets.checks import BEATS_BASELINE, BEATS_BASELINE_DESCRIPTION, beats_majority_baseline
from assets.partitions import (
    MODEL,
    TASK,
    PartitionEvents,
    checks_done,
    in_settings_order,
    model_partition_key,
    partition_events,
    stage_asset,
)
from training.leases import REUSED, DevicePool, lease_unless_reused
from training.reused import ReusedSeed, ReusedTraining
from training.settings import Project, ProjectPaths, Settings
from training.stages.catalog import stage
from training.stages.outputs import METRICS_FILE, stage_outputs
from training.stages.training_stage import run_training_stage
from training.tracking import Publication, TrainingStore

GPU_POOL = "gpu"
SHOWN_SCORES = ("miou", "miou_std", "mpa", "mpa_std", "authors_miou", "authors_mpa", "best_val_miou",
                "majority_baseline_miou")
"""Summary scores shown as the materialization's metadata (test split unless named otherwise)."""


def _rounded(value: object) -> float:
    return round(float(value), 4)


@dataclass
class EpochLog:
    """A fit callback writing one line per epoch to the Dagster run log."""

    log: logging.Logger
    label: str
    epochs: int

    def on_epoch_end(self, epoch: int, metrics: dict[str, float]) -> None:
        scores = " ".join(f"{name}={value:.4f}" for name, value in metrics.items())
        self.log.info(f"{self.label} epoch {epoch}/{self.epochs}: {scores}")


@dataclass(frozen=True)
class TrainedPartition:
    """What one task x model's materialization shows: its summary, best seed's record, seeds, device."""

    summary: dict[str, object]
    best: Publication
    device: str
    reused: bool


def _reused(settings: Settings, root: Path, task: str, model: str,
            seeds: list[ReusedSeed]) -> TrainedPartition:
    summary = json.loads((ProjectPaths.of(settings, root).run_dir(task, model) / METRICS_FILE).read_text())
    best = max(seeds, key=lambda seed: float(seed.scores["best_val_miou"]))
    return TrainedPartition(summary, best.publication, REUSED, reused=True)


def _trained(context: dg.AssetExecutionContext, project: Project, task: str, model: str,
             store: TrainingStore, devices: DevicePool) -> TrainedPartition:
    """The full stage: lease a device unless reused, train (or reuse) every seed, publish, summarize."""
    settings = project.settings
    epoch_log = EpochLog(context.log, f"{task}/{model}", settings.train.epochs)
    with ExitStack() as stack:
        store, device = lease_unless_reused(stack, devices, settings, project.root, task, model, store)
        context.log.info(f"{task}/{model} reuses the finished training of every seed (no device leased)"
                         if device == REUSED else f"{task}/{model} trains on {device}")
        outcome = run_training_stage(settings, project.root, task, model, store, launcher="dagster",
                                     callbacks=[epoch_log])
    reused = all(seed.reused for seed in outcome.seeds)
    return TrainedPartition(outcome.summary, outcome.best.publication, device, reused)


def _events(context: dg.AssetExecutionContext, settings: Settings, task: str, model: str,
            trained: TrainedPartition) -> PartitionEvents:
    summary, best = trained.summary, trained.best
    metadata = {
        **{name: _rounded(summary[name]) for name in SHOWN_SCORES if summary.get(name) is not None},
        "seeds": list(settings.train.seeds), "device": trained.device,
        "mlflow_run": dg.MetadataValue.url(best.run_url),
        "registered_model": best.model.registered_name or "",
        "model_version": best.model.version or "",
        "promoted_to_best": best.promoted,
        "best_alias": best.best_note,
        "reused_finished_training": trained.reused,
        "outputs": stage_outputs(settings, "train", task=task, model=model),
    }
    check = beats_majority_baseline(
        test_miou=float(summary["miou"]), majority_baseline_miou=float(summary["majority_baseline_miou"]),
        val_miou=float(summary["best_val_miou"]), task=task, model=model,
        weights_known_random=summary["network"] != "unet" and settings.model.weights == "none")
    yield from partition_events(context, model_partition_key(task, model), metadata, [check])


def trainings_backfill(partitions: int, trainings_at_once: int) -> dg.BackfillPolicy:
    """A backfill's runs: as many as trainings can run at once, each over its share of the partitions (one
    run when the machine trains one at a time)."""
    if trainings_at_once <= 1:
        return dg.BackfillPolicy.single_run()
    return dg.BackfillPolicy.multi_run(max_partitions_per_run=math.ceil(partitions / trainings_at_once))


def build_trained_model(partitions: dg.MultiPartitionsDefinition, prepared_data: dg.AssetsDefinition,
                        trainings_at_once: int = 1) -> dg.AssetsDefinition:
    """The trained-model asset over `partitions` (task x model), each reading its task's prepared data; a
    backfill runs in as many runs as `trainings_at_once`."""
    tasks, models = (partitions.get_partitions_def_for_dimension(name).get_partition_keys()
                     for name in (TASK, MODEL))
    order = [model_partition_key(task, model) for task in tasks for model in models]

    @dg.asset(
        partitions_def=partitions,
        backfill_policy=trainings_backfill(len(order), trainings_at_once),
        output_required=False,
        deps=[dg.AssetDep(prepared_data, partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
            partition_dimension_name=TASK))],
        pool=GPU_POOL,
        check_specs=[dg.AssetCheckSpec(BEATS_BASELINE, asset=stage("train").asset, partitions_def=partitions,
                                       description=BEATS_BASELINE_DESCRIPTION)],
        **stage_asset("train"),
        kinds={"pytorch", "mlflow"},
    )
    def trained_model(context: dg.AssetExecutionContext, project: dg.ResourceParam[Project],
                      mlflow: dg.ResourceParam[TrainingStore], devices: dg.ResourceParam[DevicePool],
                      reuse: dg.ResourceParam[ReusedTraining]) -> PartitionEvents:
        """Fit on train, select on val, score on test; logged to MLflow and registered (best aliased)."""
        settings = project.settings
        for key in in_settings_order(context.partition_keys, order):
            dimensions = partitions.get_partition_key_from_str(key).keys_by_dimension
            task, model = dimensions[TASK], dimensions[MODEL]
            seeds = reuse(settings, project.root, task, model)
            if seeds is not None:
                context.log.info(f"{task}/{model} reuses the finished training of every seed (no device "
                                 "leased)")
                trained = _reused(settings, project.root, task, model, seeds)
            else:
                trained = _trained(context, project, task, model, mlflow, devices)
            yield from _events(context, settings, task, model, trained)
        yield from checks_done(context)

    return trained_model
