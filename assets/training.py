"""The trained-model asset: one network (and fine-tuning mode) trained and tested on one task."""

import logging
from contextlib import ExitStack
from dataclasses import dataclass

import dagster as dg

from assets.checks import BEATS_BASELINE, BEATS_BASELINE_DESCRIPTION, beats_majority_baseline
from assets.partitions import TASK, AssetEvents, stage_asset, task_and_model
from training.leases import REUSED, DevicePool, lease_unless_reused
from training.settings import Project
from training.stages.catalog import stage
from training.stages.outputs import stage_outputs
from training.stages.training_stage import run_training_stage
from training.tracking import TrainingStore

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


def build_trained_model(partitions: dg.MultiPartitionsDefinition,
                        prepared_data: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The trained-model asset over `partitions` (task x model), each reading its task's prepared data."""

    @dg.asset(
        partitions_def=partitions,
        deps=[dg.AssetDep(prepared_data, partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
            partition_dimension_name=TASK))],
        pool=GPU_POOL,
        check_specs=[dg.AssetCheckSpec(BEATS_BASELINE, asset=stage("train").asset, partitions_def=partitions,
                                       description=BEATS_BASELINE_DESCRIPTION)],
        **stage_asset("train"),
        kinds={"pytorch", "mlflow"},
    )
    def trained_model(context: dg.AssetExecutionContext, project: dg.ResourceParam[Project],
                      mlflow: dg.ResourceParam[TrainingStore],
                      devices: dg.ResourceParam[DevicePool]) -> AssetEvents:
        """Fit on train, select on val, score on test; logged to MLflow and registered (best aliased)."""
        settings = project.settings
        task, model = task_and_model(context)
        epoch_log = EpochLog(context.log, f"{task}/{model}", settings.train.epochs)
        with ExitStack() as stack:
            store, device = lease_unless_reused(stack, devices, settings, project.root, task, model, mlflow)
            context.log.info(f"{task}/{model} reuses the finished training of every seed (no device leased)"
                             if device == REUSED else f"{task}/{model} trains on {device}")
            outcome = run_training_stage(settings, project.root, task, model, store, launcher="dagster",
                                         callbacks=[epoch_log])
        summary, best = outcome.summary, outcome.best
        yield dg.MaterializeResult(metadata={
            **{name: _rounded(summary[name]) for name in SHOWN_SCORES if summary.get(name) is not None},
            "seeds": list(settings.train.seeds), "device": device,
            "mlflow_run": dg.MetadataValue.url(best.publication.run_url),
            "registered_model": best.publication.model.registered_name or "",
            "model_version": best.publication.model.version or "",
            "promoted_to_best": best.publication.promoted,
            "best_alias": best.publication.best_note,
            "reused_finished_training": all(seed.reused for seed in outcome.seeds),
            "outputs": stage_outputs(settings, "train", task=task, model=model),
        })
        yield beats_majority_baseline(
            test_miou=outcome.miou, majority_baseline_miou=float(summary["majority_baseline_miou"]),
            val_miou=float(summary["best_val_miou"]), task=task, model=model,
            weights_known_random=best.result.network != "unet" and settings.model.weights == "none")

    return trained_model
